// `import nexus`: the library from Python (pybind11). A model or a .nexus bundle loaded once, its
// tokenizer, generation as a streaming iterator (the generation runs on a worker thread without the
// GIL; each piece of text is handed over as it is decided), byte-level scores, and a feature store
// whose arrays are NumPy views of the mapped shards (no copy; read-only; they keep the store open).
//
//   import nexus
//   m = nexus.load("HuggingFaceTB/SmolLM2-135M-Instruct")   # a folder, .gguf, HF id, or .nexus bundle
//   ids = m.tokenizer.encode("Hello")
//   for piece in m.generate("The capital of France is", max_new_tokens=16): print(piece, end="")
//   m.score("some text")["bits_per_byte"]
//   store = nexus.FeatureStore("store/"); w = store.window(0); w.topk_logprobs(0)   # numpy [tokens, k]
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "nexus/backend/cpu/blas.hpp"
#include "nexus/backend/cpu/model.hpp"
#include "nexus/fusion/bytes/score.hpp"
#include "nexus/fusion/features/feature_store.hpp"
#include "nexus/fusion/system/system.hpp"
#include "nexus/generate/generate.hpp"
#include "nexus/io/model_cache.hpp"
#include "nexus/tokenizer/tokenizer.hpp"

namespace py = pybind11;

namespace {

/// Text pieces produced by a worker thread and taken one at a time by Python's iterator protocol.
/// Dropping the iterator early cancels the generation at its next piece.
class text_stream {
 public:
  using job = std::function<void(const std::function<void(std::string_view)>& emit)>;

  explicit text_stream(job run) {
    worker_ = std::thread([this, run = std::move(run)] {
      try {
        run([this](std::string_view piece) {
          std::lock_guard lock(m_);
          if (cancelled_) throw cancelled{};
          pieces_.emplace_back(piece);
          cv_.notify_one();
        });
      } catch (const cancelled&) {
      } catch (...) {
        std::lock_guard lock(m_);
        error_ = std::current_exception();
      }
      std::lock_guard lock(m_);
      done_ = true;
      cv_.notify_one();
    });
  }
  ~text_stream() {
    {
      std::lock_guard lock(m_);
      cancelled_ = true;
    }
    py::gil_scoped_release release;  // the worker never needs the GIL, but a caller may be waiting on it
    if (worker_.joinable()) worker_.join();
  }
  text_stream(const text_stream&) = delete;
  text_stream& operator=(const text_stream&) = delete;

  /// The next piece; StopIteration at the end; the generation's error, if it failed, raised here.
  std::string next() {
    std::unique_lock lock(m_);
    {
      py::gil_scoped_release release;
      cv_.wait(lock, [&] { return !pieces_.empty() || done_; });
    }
    if (!pieces_.empty()) {
      auto p = std::move(pieces_.front());
      pieces_.pop_front();
      return p;
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    throw py::stop_iteration();
  }

 private:
  struct cancelled {};
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> pieces_;
  std::exception_ptr error_;
  bool done_ = false, cancelled_ = false;
  std::thread worker_;
};

/// A model with its tokenizer; one generation at a time (the mutex), any number of readers otherwise.
struct loaded_model {
  std::string path;
  std::unique_ptr<nexus::model> model;
  std::shared_ptr<nexus::tokenizer> tok;
  std::mutex busy;
};

/// A fused system; one run at a time (its teacher set loads and evicts as it goes).
struct loaded_system {
  std::string path;
  std::unique_ptr<nexus::fusion::fused_system> sys;
  std::mutex busy;
};

std::shared_ptr<loaded_model> load_model(const std::string& name, int threads) {
  const auto path = nexus::resolve_model(name).string();
  auto m = std::make_shared<loaded_model>();
  m->path = path;
  {
    py::gil_scoped_release release;
    m->model = nexus::load_cpu_model(path, {.threads = threads});
    m->tok = std::make_shared<nexus::tokenizer>(nexus::tokenizer::load(path));
  }
  return m;
}

std::shared_ptr<loaded_system> load_system(const std::string& path, int threads) {
  auto s = std::make_shared<loaded_system>();
  s->path = path;
  py::gil_scoped_release release;
  s->sys =
      std::make_unique<nexus::fusion::fused_system>(path, nexus::fusion::system_options{.cpu = {.threads = threads}});
  return s;
}

/// A read-only NumPy view of `data` ([rows, cols] of T, or [rows] with cols 0) that keeps `owner` alive.
template <class T>
py::array view(std::span<const T> data, std::int64_t rows, std::int64_t cols, py::handle owner,
               py::dtype type = py::dtype::of<T>()) {
  std::vector<py::ssize_t> shape{py::ssize_t(rows)},
      strides{py::ssize_t(cols > 0 ? cols * std::int64_t(sizeof(T)) : sizeof(T))};
  if (cols > 0) shape.push_back(py::ssize_t(cols)), strides.push_back(py::ssize_t(sizeof(T)));
  py::array a(type, shape, strides, data.data(), owner);
  a.attr("setflags")(py::arg("write") = false);
  return a;
}

/// A window of a store, holding the store open.
struct store_window {
  std::shared_ptr<nexus::fusion::feature_store> store;
  nexus::fusion::feature_store::window_view w;
};

py::dict score_model(loaded_model& m, const std::string& text) {
  std::lock_guard lock(m.busy);
  py::gil_scoped_release release;
  std::size_t tokens = 0;
  const double canonical = nexus::fusion::canonical_log_likelihood(*m.model, *m.tok, text, false, &tokens);
  const auto b = nexus::fusion::score_bytes(*m.model, *m.tok, text, false);
  py::gil_scoped_acquire gil;
  const double ln2 = std::log(2.0), n = double(text.size());
  py::dict d;
  d["bytes"] = text.size();
  d["log_likelihood"] = b.log_likelihood;
  d["bits_per_byte"] = -b.log_likelihood / (n * ln2);
  d["canonical_log_likelihood"] = canonical;
  d["canonical_bits_per_byte"] = -canonical / (n * ln2);
  d["canonical_tokens"] = tokens;
  d["forward_tokens"] = b.stats.forward_tokens;
  d["seconds"] = b.seconds;
  return d;
}

py::dict score_system(loaded_system& s, const std::string& text, const std::optional<std::string>& mode) {
  std::lock_guard lock(s.busy);
  if (mode) {
    const auto m = nexus::fusion::parse_system_mode(*mode);
    nexus::fusion::mode_run r;
    {
      py::gil_scoped_release release;
      r = s.sys->run(m, text);
    }
    // The same fields as `nexus score --mode --json` (fused_system::report), through Python's json.
    py::dict j = py::module_::import("json").attr("loads")(s.sys->report(m, r, text.size()).dump());
    j["mode"] = *mode;
    return j;
  }
  nexus::fusion::system_score sc;
  {
    py::gil_scoped_release release;
    sc = s.sys->score(text);
  }
  py::dict d, teachers;
  for (const auto& t : sc.teachers) teachers[py::str(t.name)] = t.bits_per_byte;
  d["teachers"] = teachers;
  d["mixture"] = sc.bits_per_byte;
  if (sc.cascade_bits_per_byte) d["cascade"] = *sc.cascade_bits_per_byte;
  if (sc.routed_teacher) d["routed"] = s.sys->manifest().teachers[*sc.routed_teacher].name;
  d["seconds"] = sc.seconds;
  return d;
}

}  // namespace

PYBIND11_MODULE(nexus, m) {
  m.doc() = "Nexus: transformer checkpoints of many families through one set of blocks, and fused systems of them";
  m.attr("__version__") = NEXUS_VERSION;
  // OpenBLAS picks its kernels when it is loaded: set OPENBLAS_CORETYPE first (unless the user has),
  // as the nexus command does (cpu/blas.hpp). Documented in docs/python.md.
  nexus::cpu::choose_openblas_kernels();

  // Errors: every nexus::error is nexus.Error (a RuntimeError); bad arguments are nexus.UsageError, both
  // a nexus.Error and a ValueError (registered last, so tried first).
  const auto& error = py::register_exception<nexus::error>(m, "Error", PyExc_RuntimeError);
  py::register_exception<nexus::usage_error>(m, "UsageError", py::make_tuple(error, py::handle(PyExc_ValueError)));

  py::class_<nexus::tokenizer, std::shared_ptr<nexus::tokenizer>>(m, "Tokenizer")
      .def(
          "encode",
          [](const nexus::tokenizer& t, const std::string& text, bool add_special_tokens) {
            return t.encode(text, add_special_tokens);
          },
          py::arg("text"), py::arg("add_special_tokens") = false)
      .def(
          "decode",
          [](const nexus::tokenizer& t, const std::vector<std::int32_t>& ids, bool skip_special_tokens) {
            return t.decode(ids, skip_special_tokens);
          },
          py::arg("ids"), py::arg("skip_special_tokens") = false)
      .def_property_readonly("vocab_size", &nexus::tokenizer::vocab_size)
      .def_property_readonly("end_of_generation", &nexus::tokenizer::end_of_generation);

  py::class_<text_stream>(m, "TextStream", "Pieces of generated text, complete UTF-8 characters, as they are decided")
      .def("__iter__", [](text_stream& s) -> text_stream& { return s; })
      .def("__next__", &text_stream::next);

  py::class_<loaded_model, std::shared_ptr<loaded_model>>(m, "Model")
      .def_readonly("path", &loaded_model::path)
      .def_property_readonly("tokenizer", [](const loaded_model& x) { return x.tok; })
      .def_property_readonly("family", [](const loaded_model& x) { return x.model->arch().family; })
      .def_property_readonly("vocab_size", [](const loaded_model& x) { return x.model->arch().dims.vocab_size; })
      .def_property_readonly(
          "root_context",
          [](const loaded_model& x) { return nexus::fusion::root_context(*x.tok, x.model->arch().dims.vocab_size); },
          "The tokens a text is read after, as the byte-level view and the fused systems read it")
      .def(
          "generate",
          [](std::shared_ptr<loaded_model> x, const std::variant<std::string, std::vector<std::int32_t>>& prompt,
             std::int64_t max_new_tokens, float temperature, int top_k, float top_p, std::uint64_t seed,
             std::vector<std::string> stop, std::optional<std::vector<std::int32_t>> stop_tokens) {
            nexus::generate_options g;
            g.max_new_tokens = max_new_tokens;
            g.sampling = {temperature, top_k, top_p, seed};
            g.sampling.validate();
            g.stop_strings = std::move(stop);
            g.stop_tokens = std::move(stop_tokens);
            const auto ids = std::holds_alternative<std::string>(prompt)
                                 ? x->tok->encode(std::get<std::string>(prompt), true)
                                 : std::get<std::vector<std::int32_t>>(prompt);
            if (ids.empty()) throw nexus::usage_error("generate", "empty prompt");
            return std::make_unique<text_stream>([x, g, ids](const auto& emit) mutable {
              std::lock_guard lock(x->busy);
              g.on_text = [&](const std::string& piece) { emit(piece); };
              (void)nexus::generate(*x->model, x->tok.get(), ids, g);
            });
          },
          py::arg("prompt"), py::arg("max_new_tokens") = 32, py::arg("temperature") = 0.0f, py::arg("top_k") = 0,
          py::arg("top_p") = 1.0f, py::arg("seed") = 0, py::arg("stop") = std::vector<std::string>{},
          py::arg("stop_tokens") = std::nullopt,
          "A streaming iterator of the continuation's text (greedy unless temperature > 0) of `prompt` (text, "
          "encoded with the tokenizer's special tokens, or token ids); it ends at a stop token (None: the model's "
          "own end of generation; []: none), a stop string (cut before it) or max_new_tokens")
      .def("score", &score_model, py::arg("text"),
           "Bits per byte of `text`: byte-level (every tokenization marginalised) and canonical")
      .def(
          "logits",
          [](loaded_model& x, const std::vector<std::int32_t>& ids) {
            std::lock_guard lock(x.busy);
            if (ids.empty()) throw nexus::usage_error("logits", "no ids");
            std::vector<float> out;
            std::int64_t V = 0;
            {
              py::gil_scoped_release release;
              auto cache = x.model->new_cache(std::int64_t(ids.size()));
              auto r = x.model->forward(ids, cache, {.all_logits = true});
              V = r.logits.shape.at(1);
              out = std::move(r.logits.data);
            }
            auto* owned = new std::vector<float>(std::move(out));  // handed to NumPy: no copy
            py::capsule free(owned, [](void* p) { delete static_cast<std::vector<float>*>(p); });
            return py::array_t<float>({py::ssize_t(ids.size()), py::ssize_t(V)}, owned->data(), free);
          },
          py::arg("ids"), "Logits [len(ids), vocab] of one forward over `ids` (float32)");

  py::class_<loaded_system, std::shared_ptr<loaded_system>>(m, "System")
      .def_readonly("path", &loaded_system::path)
      .def_property_readonly("teachers",
                             [](const loaded_system& s) {
                               std::vector<std::string> n;
                               for (const auto& t : s.sys->manifest().teachers) n.push_back(t.name);
                               return n;
                             })
      .def_property_readonly("weights", [](const loaded_system& s) { return s.sys->weights(); })
      .def("score", &score_system, py::arg("text"), py::arg("mode") = std::nullopt,
           "Bits per byte of `text` under every teacher and mode, or (mode='mixture'|'cascade'|'router') one mode "
           "alone with what each teacher read and decided")
      .def(
          "generate",
          [](std::shared_ptr<loaded_system> s, const std::string& prompt, std::size_t max_bytes,
             std::vector<std::string> stop, const std::string& mode) {
            nexus::fusion::system_generate_options o;
            o.max_bytes = max_bytes;
            o.stop = std::move(stop);
            o.mode = nexus::fusion::parse_system_mode(mode);
            return std::make_unique<text_stream>([s, o, prompt](const auto& emit) mutable {
              std::lock_guard lock(s->busy);
              o.on_text = [&](std::string_view piece) { emit(piece); };
              (void)s->sys->generate(prompt, o);
            });
          },
          py::arg("prompt"), py::arg("max_bytes") = 256, py::arg("stop") = std::vector<std::string>{},
          py::arg("mode") = "auto",
          "A streaming iterator of the system's greedy continuation (router, cascade or mixture)");

  m.def(
      "load",
      [](const std::string& name, int threads) -> py::object {
        if (std::filesystem::path(name).extension() == ".nexus") return py::cast(load_system(name, threads));
        return py::cast(load_model(name, threads));
      },
      py::arg("name"), py::arg("threads") = 0,
      "A model (checkpoint folder, .gguf file, Hugging Face id or cache folder) or a fused system (.nexus bundle)");
  m.def(
      "load_tokenizer",
      [](const std::string& name) {
        return std::make_shared<nexus::tokenizer>(nexus::tokenizer::load(nexus::resolve_model(name)));
      },
      py::arg("name"), "The tokenizer of a checkpoint folder, .gguf file or Hugging Face id, without its weights");

  using nexus::fusion::feature_store;
  py::class_<store_window>(m, "Window", "One window of a feature store; its arrays are views of the mapped shard")
      .def_property_readonly("document", [](const store_window& w) { return w.w.document(); })
      .def_property_readonly("bytes", [](const store_window& w) { return w.w.bytes(); })
      .def(
          "tokens", [](const store_window& w, std::size_t t) { return w.w.tokens(t); }, py::arg("teacher"))
      .def(
          "ids",
          [](py::object self, std::size_t t) {
            const auto& w = self.cast<const store_window&>();
            return view(w.w.ids(t), std::int64_t(w.w.tokens(t)), 0, self);
          },
          py::arg("teacher"), "Token ids [tokens] (int32)")
      .def(
          "spans",
          [](py::object self, std::size_t t) {
            const auto& w = self.cast<const store_window&>();
            return view(w.w.spans(t), std::int64_t(w.w.tokens(t)), 2, self);
          },
          py::arg("teacher"), "Byte spans [tokens, 2] (int64) of the tokens in their document")
      .def(
          "topk_logprobs",
          [](py::object self, std::size_t t) {
            const auto& w = self.cast<const store_window&>();
            return view(w.w.topk_logprobs(t), std::int64_t(w.w.tokens(t)), w.store->top_k(), self);
          },
          py::arg("teacher"), "Top-k log-probabilities [tokens, k] (float32)")
      .def(
          "topk_ids",
          [](py::object self, std::size_t t) {
            const auto& w = self.cast<const store_window&>();
            return view(w.w.topk_ids(t), std::int64_t(w.w.tokens(t)), w.store->top_k(), self);
          },
          py::arg("teacher"), "Top-k token ids [tokens, k] (int32)")
      .def(
          "hidden",
          [](py::object self, std::size_t t, const std::string& key) {
            const auto& w = self.cast<const store_window&>();
            const auto h = w.w.hidden(t, key);
            if (h.type == nexus::dtype::f32)
              return view(std::span(reinterpret_cast<const float*>(h.bytes.data()), h.bytes.size() / 4), h.rows,
                          h.width, self);
            // bfloat16 has no NumPy type: the raw 16-bit patterns (x.astype(np.uint32) << 16 viewed as float32 widens them)
            return view(std::span(reinterpret_cast<const std::uint16_t*>(h.bytes.data()), h.bytes.size() / 2), h.rows,
                        h.width, self);
          },
          py::arg("teacher"), py::arg("key"),
          "Hidden states [tokens, width] at `key` ('layer<i>' or 'final'): float32, or uint16 bfloat16 patterns");

  py::class_<feature_store, std::shared_ptr<feature_store>>(m, "FeatureStore",
                                                            "A feature store (nexus extract) read back, shards mapped")
      .def(py::init([](const std::filesystem::path& dir, bool require_complete) {
             return std::make_shared<feature_store>(dir, require_complete);
           }),
           py::arg("dir"), py::arg("require_complete") = true)
      .def_property_readonly("teachers",
                             [](const feature_store& s) {
                               std::vector<std::string> n;
                               for (std::size_t t = 0; t < s.teachers(); ++t) n.push_back(s.teacher_name(t));
                               return n;
                             })
      .def_property_readonly("windows", &feature_store::windows)
      .def_property_readonly("top_k", &feature_store::top_k)
      .def("layer_keys", &feature_store::layer_keys, py::arg("teacher"))
      .def("hidden_size", &feature_store::hidden_size, py::arg("teacher"))
      .def(
          "window",
          [](std::shared_ptr<feature_store> s, std::int64_t w) {
            return store_window{s, s->window(w)};
          },
          py::arg("index"))
      .def("__len__", [](const feature_store& s) { return s.windows(); });
}
