// Load a GGUF file: read hyper-parameters from its metadata, map the file and
// point every weight tensor at its bytes (zero copy on CPU); layers offloaded
// to a GPU get a copy in a buffer of that device.
#include "model/model.h"
#include "model/read_gguf.h"
#include "model/tensor_buffer.h"
#include "kernels/repacked.h"
#include "rpc/rpc.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace sb {

Model::~Model() {
    for (auto b : buffers) ggml_backend_buffer_free(b);
    if (ctx_copies) ggml_free(ctx_copies);
    if (ctx_meta) ggml_free(ctx_meta);
    if (gguf) gguf_free(gguf);
    if (mmap_addr) munmap(mmap_addr, mmap_size);
}

namespace {

// Closed on every way out of map_file (the mapping outlives it).
struct FileDescriptor {
    int fd;
    ~FileDescriptor() { if (fd >= 0) close(fd); }
};

} // namespace

// Which layer a tensor belongs to (-1 for the input / output tensors).
static int tensor_layer(const char * name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    return atoi(name + 4);
}

// The bytes of the file's i-th tensor in the mapping.
static const char * tensor_data(const Model & m, int64_t i) {
    return (const char *) m.mmap_addr + gguf_get_data_offset(m.gguf) + gguf_get_tensor_offset(m.gguf, i);
}

static void check_tensors_inside(const Model & m, size_t file_size) {
    const size_t data_off = gguf_get_data_offset(m.gguf);
    for (int64_t i = 0; i < gguf_get_n_tensors(m.gguf); ++i) {
        const ggml_tensor * t = ggml_get_tensor(m.ctx_meta, gguf_get_tensor_name(m.gguf, i));
        if (data_off + gguf_get_tensor_offset(m.gguf, i) + ggml_nbytes(t) > file_size)
            throw std::invalid_argument("GGUF file is truncated: tensor '" + std::string(ggml_get_name(t)) +
                                        "' extends past the end of the file");
    }
}

// Maps the whole file read-only, once every tensor's bytes are known to lie inside it.
static void map_file(Model & m) {
    FileDescriptor file{ open(m.path.c_str(), O_RDONLY) };
    if (file.fd < 0) throw std::runtime_error("cannot open " + m.path);
    struct stat st;
    if (fstat(file.fd, &st) != 0) throw std::runtime_error("cannot stat " + m.path);
    const size_t size = (size_t) st.st_size;
    check_tensors_inside(m, size);
    void * addr = mmap(nullptr, size, PROT_READ, MAP_SHARED, file.fd, 0);
    if (addr == MAP_FAILED) throw std::runtime_error("mmap failed for " + m.path);
    m.mmap_addr = addr;
    m.mmap_size = size;
}

// The offload devices: the RPC workers' (each worker reached through a Proxy
// of ours, see rpc/proxy.h), else the first GPU ggml knows about.
static void choose_devices(Model & m, const Placement & p) {
    if (!p.rpc_servers.empty()) {
        for (const std::string & worker : p.rpc_servers) {
            m.proxies.push_back(std::make_unique<rpc::Proxy>(worker, p.rpc_timeout_s));
            const std::vector<ggml_backend_dev_t> devs = rpc::worker_devices(*m.proxies.back());
            for (size_t i = 0; i < devs.size(); ++i) {
                m.devices.push_back(devs[i]);
                m.device_names.push_back("RPC " + worker + (devs.size() > 1 ? " #" + std::to_string(i) : ""));
            }
        }
        return;
    }
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t d = ggml_backend_dev_get(i);
        auto type = ggml_backend_dev_type(d);
        if (type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) {
            m.devices.push_back(d);
            m.device_names.push_back(std::string("GPU ") + ggml_backend_dev_name(d));
            break;
        }
    }
}

// Each device's share of the offloaded layers: tensor_split where given (as
// in llama.cpp, proportions over the devices in order), else its free memory.
static std::vector<double> device_shares(const Model & m, const std::vector<float> & tensor_split) {
    std::vector<double> share(m.devices.size(), 0.0);
    double total = 0;
    for (size_t i = 0; i < share.size(); ++i) {
        if (!tensor_split.empty()) {
            share[i] = i < tensor_split.size() ? (double) tensor_split[i] : 0.0;
        } else {
            size_t free = 0, all = 0;
            ggml_backend_dev_memory(m.devices[i], &free, &all);
            share[i] = (double) free;
        }
        if (share[i] < 0) throw std::invalid_argument("tensor_split entries must be >= 0");
        total += share[i];
    }
    if (!(total > 0)) {  // no memory reported (or all zeros asked): an even split
        std::fill(share.begin(), share.end(), 1.0);
        total = (double) share.size();
    }
    for (double & s : share) s /= total;
    return share;
}

// Offload: the last n_gpu_layers layers (and the output head when all are
// offloaded), in contiguous runs over the devices by their shares: layer k of
// the n offloaded goes to the first device whose cumulative share exceeds k/n.
static void place_layers(Model & m, const Placement & p) {
    choose_devices(m, p);
    if (m.devices.empty() || p.n_gpu_layers <= 0) return;
    m.n_gpu_layers = std::min(p.n_gpu_layers, m.hp.n_layer);
    const std::vector<double> share = device_shares(m, p.tensor_split);
    const int first = m.hp.n_layer - m.n_gpu_layers;
    m.layer_device.assign((size_t) m.hp.n_layer, -1);
    for (int il = first; il < m.hp.n_layer; ++il) {
        const double at = (double) (il - first) / (double) m.n_gpu_layers;
        double cum = 0;
        int dev = (int) share.size() - 1;
        for (size_t d = 0; d < share.size(); ++d) {
            cum += share[d];
            if (at < cum - 1e-12) { dev = (int) d; break; }
        }
        m.layer_device[(size_t) il] = dev;
    }
    if (p.n_gpu_layers >= m.hp.n_layer) m.head_device = m.layer_device.back();
}

// ---- repacking, as llama.cpp does by default (llama_model_params.use_extra_bufts)

// The CPU device's repack buffer type ("CPU_REPACK"), or null.
static ggml_backend_buffer_type_t repack_buffer_type(ggml_backend_dev_t cpu) {
    auto extra = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(
        ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts");
    for (ggml_backend_buffer_type_t * b = extra ? extra(cpu) : nullptr; b && *b; ++b)
        if (std::strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) return *b;
    return nullptr;
}

// llama.cpp's test (llama-model.cpp, weight_buft_supported): the weight goes
// to the repack buffer where the CPU device runs a MUL_MAT of it from there.
static bool repack_takes(ggml_backend_dev_t cpu, ggml_backend_buffer_type_t buft, const ggml_tensor * w) {
    ggml_init_params ip = { 3 * ggml_tensor_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(ip);
    if (!ctx) return false;
    ggml_tensor * w2 = ggml_new_tensor_2d(ctx, w->type, w->ne[0], w->ne[1]);
    ggml_tensor * op = ggml_mul_mat(ctx, w2, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, w->ne[0], 512));
    ggml_backend_buffer_t probe = ggml_backend_buft_alloc_buffer(buft, 0);
    w2->buffer = probe;
    const bool ok = probe && ggml_backend_dev_supports_op(cpu, op);
    if (probe) ggml_backend_buffer_free(probe);
    ggml_free(ctx);
    return ok;
}

// The CPU matmul weights llama.cpp would repack here and we have its
// single-token kernel for (kernels/repacked.h). A tied output head gets a
// copy of its own, as in llama.cpp (the embedding lookup reads the file's).
static std::vector<ggml_tensor *> choose_repacked(Model & m, ggml_backend_buffer_type_t buft) {
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    std::vector<ggml_tensor *> out;
    if (!buft || !cpu) return out;
    auto wanted = [&](const ggml_tensor * w) {
        return w && kernels::find_repacked(w->type) && ggml_n_dims(w) == 2 && repack_takes(cpu, buft, w);
    };
    for (int il = 0; il < m.hp.n_layer; ++il) {
        if (m.layer_on_gpu(il)) continue;
        for (const ggml_tensor * w : m.layers[il].matmul_weights())
            if (wanted(w)) out.push_back(const_cast<ggml_tensor *>(w));
    }
    if (m.head_device < 0 && wanted(m.output)) {
        if (m.output == m.tok_embd) {
            ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
            m.ctx_copies = ggml_init(ip);
            if (!m.ctx_copies) throw std::runtime_error("cannot create a ggml context for the tied output head");
            m.output = ggml_dup_tensor(m.ctx_copies, m.tok_embd);
            ggml_set_name(m.output, "output.weight(tied)");
        }
        out.push_back(m.output);
    }
    return out;
}

// The chosen weights into the repack buffer, which repacks them as they are set.
static void repack_weights(Model & m, const std::vector<ggml_tensor *> & ts, ggml_backend_buffer_type_t buft) {
    if (ts.empty()) return;
    m.buffers.push_back(alloc_tensor_buffer(buft, ts, GGML_BACKEND_BUFFER_USAGE_WEIGHTS,
                                            "cannot allocate the buffer of the repacked weights"));
    for (ggml_tensor * t : ts) {
        const ggml_tensor * src = t == m.output && m.ctx_copies ? m.tok_embd : t;
        const void * bytes = tensor_data(m, gguf_find_tensor(m.gguf, ggml_get_name(src)));
        ggml_backend_tensor_set(t, bytes, 0, ggml_nbytes(t));
        m.repacked.push_back({ t, bytes });
    }
}

// CPU: one buffer over the whole mapping; weights are used in place, except
// the repacked ones. Returns the tensors that go to each offload device instead.
static std::vector<std::vector<ggml_tensor *>> place_on_cpu(Model & m, const std::vector<ggml_tensor *> & repacked) {
    ggml_backend_buffer_t cpu_buf = ggml_backend_cpu_buffer_from_ptr(m.mmap_addr, m.mmap_size);
    if (!cpu_buf) throw std::runtime_error("cannot wrap the model mapping in a ggml buffer");
    m.buffers.push_back(cpu_buf);
    // With RPC workers: the scheduler keeps an op next to its weight only for
    // weight buffers; without this it moves CPU layers' ops (and a copy of
    // their weights, every call) to a worker that claims every op. Not with a
    // GPU: ggml-cuda would then take over large CPU matmuls (op offload).
    if (!m.proxies.empty()) ggml_backend_buffer_set_usage(cpu_buf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    std::vector<std::vector<ggml_tensor *>> off(m.devices.size());
    for (int64_t i = 0; i < gguf_get_n_tensors(m.gguf); ++i) {
        const char * name = gguf_get_tensor_name(m.gguf, i);
        ggml_tensor * t = ggml_get_tensor(m.ctx_meta, name);
        const int il = tensor_layer(name);
        const int dev = il >= 0 ? (m.layer_on_gpu(il) ? m.layer_device[(size_t) il] : -1)
                                : (t != m.tok_embd ? m.head_device : -1);
        if (dev >= 0) { off[(size_t) dev].push_back(t); continue; }
        if (std::find(repacked.begin(), repacked.end(), t) != repacked.end()) continue;
        if (ggml_backend_tensor_alloc(cpu_buf, t, (void *) tensor_data(m, i)) != GGML_STATUS_SUCCESS)
            throw std::invalid_argument(std::string("misaligned tensor data in GGUF: ") + name);
    }
    return off;
}

// Copies the offloaded tensors into one buffer per device.
static void upload_to_devices(Model & m, std::vector<std::vector<ggml_tensor *>> off) {
    // Tied embeddings: the output head needs its own copy of tok_embd on its device.
    ggml_tensor * out_copy = nullptr;
    if (m.output == m.tok_embd && m.head_device >= 0) {
        ggml_init_params ip = { ggml_tensor_overhead() * 2, nullptr, true };
        m.ctx_copies = ggml_init(ip);
        if (!m.ctx_copies) throw std::runtime_error("cannot create a ggml context for the tied output head");
        out_copy = ggml_dup_tensor(m.ctx_copies, m.tok_embd);
        ggml_set_name(out_copy, "output.weight(tied)");
        off[(size_t) m.head_device].push_back(out_copy);
    }
    for (size_t d = 0; d < off.size(); ++d) {
        if (off[d].empty()) continue;
        const std::string error = "cannot allocate a buffer on " + m.device_names[d] + " for the offloaded layers";
        m.buffers.push_back(alloc_tensor_buffer(ggml_backend_dev_buffer_type(m.devices[d]), off[d],
                                                GGML_BACKEND_BUFFER_USAGE_WEIGHTS, error.c_str()));
        for (ggml_tensor * t : off[d]) {
            const ggml_tensor * src = t == out_copy ? m.tok_embd : t;
            ggml_backend_tensor_set(t, tensor_data(m, gguf_find_tensor(m.gguf, ggml_get_name(src))), 0,
                                    ggml_nbytes(t));
        }
    }
    if (out_copy) m.output = out_copy;
}

void load_model(Model & m, const std::string & path, const Placement & placement,
                const std::vector<KvOverride> & kv_overrides) {
    m.path = path;
    gguf_init_params gp = { /*no_alloc*/ true, /*ctx*/ &m.ctx_meta };
    m.gguf = gguf_init_from_file(path.c_str(), gp);
    if (!m.gguf) throw std::invalid_argument("not a valid GGUF file (bad magic, truncated or corrupt header): " + path);
    apply_kv_overrides(m.gguf, kv_overrides);  // before anything reads the metadata
    read_hparams(m.gguf, m.hp);
    bind_tensors(m);
    map_file(m);
    place_layers(m, placement);
    ggml_backend_buffer_type_t repack_buft = repack_buffer_type(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
    const std::vector<ggml_tensor *> repacked = choose_repacked(m, repack_buft);
    std::vector<std::vector<ggml_tensor *>> off = place_on_cpu(m, repacked);
    repack_weights(m, repacked, repack_buft);
    upload_to_devices(m, std::move(off));
    rpc::check(m.proxies);  // a worker that failed while the weights went over
}

} // namespace sb
