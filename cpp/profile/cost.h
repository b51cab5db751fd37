// Cost probes for the notes and the calibration: wall time of one forward()
// over a layer range, so a layer, an exit check and the LM head can be priced
// in the same units on the machine at hand.
#pragma once

#include "engine/engine.h"

namespace sb {

struct CostProbe {
    int n_tokens = 1;    // batch size (decode phase, batch-invariant kernels)
    int n_past = 0;      // cells already in the cache before the batch
    int enter = 0;       // layer range [enter, exit) of every token
    int exit = 0;
    bool logits = false; // final norm + LM head (exit must be n_layer)
    bool check = false;  // exit head over the candidate vocabulary
    int reps = 5;
    bool invariant = true;  // decode-phase kernels (false: prompt-processing kernels)
};

// Best-of-reps milliseconds of one forward() call. Writes the KV cache of the
// probed positions: callers re-prefill before generating again.
double time_forward(Engine & engine, const CostProbe & probe);

} // namespace sb
