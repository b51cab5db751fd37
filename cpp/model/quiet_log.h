// Silences llama.cpp's and ggml's log (errors still reach stderr) while it
// lives, then puts back whatever callback was there: the callback is
// process-wide, shared with llama_cpp.
#pragma once

#include <llama.h>

#include <cstdio>

namespace sb {

class QuietLog {
  public:
    explicit QuietLog(bool quiet) : quiet_(quiet) {
        if (!quiet_) return;
        llama_log_get(&prev_cb_, &prev_ud_);
        llama_log_set(errors_only, nullptr);
    }
    ~QuietLog() {
        if (quiet_) llama_log_set(prev_cb_, prev_ud_);
    }
    QuietLog(const QuietLog &) = delete;
    QuietLog & operator=(const QuietLog &) = delete;

  private:
    static void errors_only(ggml_log_level level, const char * text, void *) {
        if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
    }
    bool quiet_;
    ggml_log_callback prev_cb_ = nullptr;
    void * prev_ud_ = nullptr;
};

} // namespace sb
