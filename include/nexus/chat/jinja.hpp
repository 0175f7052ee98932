// The subset of Jinja that chat templates use, rendered as transformers renders them (Jinja2's
// ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and loop controls; newlines
// normalised to "\n", one trailing newline dropped; transformers' own `tojson`). A construct
// outside the subset fails when the template is compiled, with a template_error naming it, its
// line and column; errors while rendering name the position of the expression.
//
// Supported: {{ }}, {# #}, {% if/elif/else %}, {% for %} (tuple targets, `if` filter, else, loop.*,
// break/continue), {% set %} (names, tuples, namespace attributes, set blocks), {% macro %},
// {% generation %}, whitespace control (- and +), literals (str, int, float, bool, none, list,
// tuple, dict), arithmetic, `~`, comparisons, and/or/not, in, `x if c else y`, subscripts, slices,
// attributes, the str and dict methods templates call (strip, split, startswith, items, get, ...),
// the filters of filter_names() and tests of test_names(), and the globals raise_exception,
// namespace, range, dict, strftime_now.
#pragma once

#include <chrono>
#include <cmath>
#include <ctime>
#include <string>
#include <unordered_map>
#include <vector>

#include "nexus/chat/jinja_parse.hpp"

namespace nexus::jinja {

/// A parsed template; render() any number of times with different variables.
class compiled_template {
 public:
  /// `where` names the template's origin in errors (e.g. "model.gguf: tokenizer.chat_template").
  compiled_template(std::string_view source, std::string where = "chat template") : where_(std::move(where)) {
    std::string src;  // newlines as Jinja2 normalises them; keep_trailing_newline=False
    for (std::size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src += source[i];
      }
    }
    if (!src.empty() && src.back() == '\n') src.pop_back();
    lexer_ = std::make_unique<lexer>(std::move(src), where_);
    body_ = parser(lexer_->run(), *lexer_).parse_template();
  }

  /// The text the template renders with `variables` as its context (plus the globals).
  std::string render(const object& variables) const;

  const std::string& where() const { return where_; }

 private:
  friend class renderer;
  std::string where_;
  std::unique_ptr<lexer> lexer_;
  body body_;
};

class renderer {
 public:
  renderer(const compiled_template& t, const object& vars) : t_(t) {
    scopes_.emplace_back();
    install_globals();
    for (const auto& [k, v] : vars.items) scopes_.back()[k] = v;
  }

  std::string run() {
    std::string out;
    if (render(t_.body_, out) != flow::normal) fail(0, "'break' or 'continue' outside a loop");
    return out;
  }

 private:
  enum class flow { normal, break_, continue_ };

  [[noreturn]] void fail(std::size_t pos, const std::string& what) const { t_.lexer_->fail(pos, what); }

  void install_globals() {
    auto& g = scopes_.back();
    g["raise_exception"] = function([this](call_args& a) -> value {
      const auto [line, col] = line_column(t_.lexer_->source(), call_pos_);
      throw template_raised_error(t_.where_, line, col, "raise_exception: " + to_str(a.get(0, "message")));
    });
    g["namespace"] = function([this](call_args& a) -> value {
      object o;
      o.is_namespace = true;
      for (const auto& p : a.positional)
        if (p.is_object())
          for (const auto& [k, v] : p.obj().items) o.set(k, v);
      for (auto& [k, v] : a.keyword) o.set(k, v);
      for (const auto& [k, v] : o.items)
        if (!k.empty() && k.front() == '_') fail(call_pos_, "a namespace attribute may not start with '_'");
      return o;
    });
    g["dict"] = function([](call_args& a) -> value {
      object o;
      for (auto& [k, v] : a.keyword) o.set(k, v);
      return o;
    });
    g["range"] = function([this](call_args& a) -> value {
      std::int64_t start = 0, stop = 0, step = 1;
      auto num = [&](std::size_t i) {
        if (!a.positional[i].is_int()) fail(call_pos_, "range() takes integers");
        return a.positional[i].as_int();
      };
      if (a.positional.size() == 1) stop = num(0);
      else if (a.positional.size() >= 2) start = num(0), stop = num(1), step = a.positional.size() > 2 ? num(2) : 1;
      else fail(call_pos_, "range() takes 1 to 3 arguments");
      if (step == 0) fail(call_pos_, "range() step must not be zero");
      array out;
      for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (out.size() > 10'000'000) fail(call_pos_, "range() too long");
        out.emplace_back(i);
      }
      return out;
    });
    g["strftime_now"] = function([](call_args& a) -> value {
      const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const auto n = std::strftime(buf, sizeof buf, to_str(a.get(0, "format")).c_str(), &tm);
      return std::string(buf, n);
    });
  }

  // ---- variables ----
  value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (const auto f = it->find(name); f != it->end()) return f->second;
    return {};
  }

  // ---- statements ----
  flow render(const body& nodes, std::string& out) {
    for (const auto& n : nodes) {
      const flow f = render(n, out);
      if (f != flow::normal) return f;
    }
    return flow::normal;
  }

  flow render(const node& n, std::string& out) {
    switch (n.type) {
      case node::kind::text: out += n.text; return flow::normal;
      case node::kind::output: {
        const value v = eval(*n.value);
        out += to_str(v);
        if (out.size() > max_string) fail(n.pos, "output longer than " + std::to_string(max_string) + " bytes");
        return flow::normal;
      }
      case node::kind::if_:
        for (const auto& [cond, b] : n.branches)
          if (eval(*cond).truthy()) return render(b, out);
        return render(n.otherwise, out);
      case node::kind::for_: return render_for(n, out);
      case node::kind::set: {
        value v = eval(*n.value);
        if (n.attribute_target) {
          const value target = lookup(n.targets[0]);
          if (!target.is_object() || !target.obj().is_namespace)
            fail(n.pos, "cannot assign attribute '" + n.targets[1] + "' of '" + n.targets[0] + "': not a namespace()");
          if (n.targets[1].front() == '_')
            fail(n.pos, "a namespace attribute may not start with '_'");  // as transformers' sandbox
          target.obj_mut().set(n.targets[1], std::move(v));
        } else if (n.targets.size() == 1) {
          scopes_.back()[n.targets[0]] = std::move(v);
        } else {
          const auto items = iterate(v, n.pos);
          if (items.size() != n.targets.size())
            fail(n.pos, "cannot unpack " + std::to_string(items.size()) + " values into " +
                            std::to_string(n.targets.size()) + " names");
          for (std::size_t i = 0; i < items.size(); ++i) scopes_.back()[n.targets[i]] = items[i];
        }
        return flow::normal;
      }
      case node::kind::set_block: {
        std::string captured;
        scopes_.emplace_back();
        render(n.children, captured);
        scopes_.pop_back();
        scopes_.back()[n.text] = std::move(captured);
        return flow::normal;
      }
      case node::kind::macro: {
        const node* m = &n;
        scopes_.back()[n.text] = function([this, m](call_args& a) -> value { return call_macro(*m, a); });
        return flow::normal;
      }
      case node::kind::break_: return flow::break_;
      case node::kind::continue_: return flow::continue_;
      case node::kind::block: return render(n.children, out);
    }
    return flow::normal;
  }

  value call_macro(const node& m, call_args& a) {
    if (macro_depth_ >= max_macro_depth)
      fail(call_pos_, "macro '" + m.text + "' calls nested deeper than " + std::to_string(max_macro_depth));
    ++macro_depth_;
    struct leave {
      int& d;
      ~leave() { --d; }
    } guard{macro_depth_};
    if (a.positional.size() > m.params.size())
      fail(call_pos_, "macro '" + m.text + "' takes " + std::to_string(m.params.size()) + " arguments");
    std::unordered_map<std::string, value> frame;
    const std::size_t first_default = m.params.size() - m.defaults.size();
    for (std::size_t i = 0; i < m.params.size(); ++i) {
      value v = i < a.positional.size() ? a.positional[i] : value{};
      for (const auto& [k, kv] : a.keyword)
        if (k == m.params[i]) v = kv;
      if (v.is_undefined() && i >= first_default) v = eval(*m.defaults[i - first_default]);
      frame[m.params[i]] = std::move(v);
    }
    for (const auto& [k, kv] : a.keyword)
      if (std::find(m.params.begin(), m.params.end(), k) == m.params.end())
        fail(call_pos_, "macro '" + m.text + "' has no parameter '" + k + "'");
    // A macro sees the globals and its arguments, not the caller's locals.
    std::vector<std::unordered_map<std::string, value>> saved(scopes_.begin() + 1, scopes_.end());
    scopes_.resize(1);
    scopes_.push_back(std::move(frame));
    std::string out;
    render(m.children, out);
    scopes_.resize(1);
    for (auto& s : saved) scopes_.push_back(std::move(s));
    return out;
  }

  flow render_for(const node& n, std::string& out) {
    std::vector<value> items;
    for (auto& item : iterate(eval(*n.value), n.value->pos)) {
      if (n.condition) {
        scopes_.emplace_back();
        bind_targets(n, item);
        const bool keep = eval(*n.condition).truthy();
        scopes_.pop_back();
        if (!keep) continue;
      }
      items.push_back(std::move(item));
    }
    if (items.empty()) return render(n.otherwise, out);
    const auto length = std::int64_t(items.size());
    for (std::int64_t i = 0; i < length; ++i) {
      object loop;
      loop.set("index0", i);
      loop.set("index", i + 1);
      loop.set("revindex0", length - i - 1);
      loop.set("revindex", length - i);
      loop.set("first", i == 0);
      loop.set("last", i == length - 1);
      loop.set("length", length);
      loop.set("depth", 1);
      loop.set("depth0", 0);
      loop.set("previtem", i > 0 ? items[std::size_t(i - 1)] : value{});
      loop.set("nextitem", i + 1 < length ? items[std::size_t(i + 1)] : value{});
      loop.set("cycle", function([i](call_args& a) -> value {
                 return a.positional.empty() ? value{} : a.positional[std::size_t(i) % a.positional.size()];
               }));
      scopes_.emplace_back();
      scopes_.back()["loop"] = std::move(loop);
      bind_targets(n, items[std::size_t(i)]);
      const flow f = render(n.children, out);
      scopes_.pop_back();
      if (f == flow::break_) break;
    }
    return flow::normal;
  }

  void bind_targets(const node& n, const value& item) {
    if (n.targets.size() == 1) {
      scopes_.back()[n.targets[0]] = item;
      return;
    }
    const auto parts = iterate(item, n.pos);
    if (parts.size() != n.targets.size())
      fail(n.pos, "cannot unpack " + std::to_string(parts.size()) + " values into " + std::to_string(n.targets.size()) +
                      " loop variables");
    for (std::size_t k = 0; k < parts.size(); ++k) scopes_.back()[n.targets[k]] = parts[k];
  }

  /// The items a for loop sees: list items, dict keys, string characters; undefined is empty.
  std::vector<value> iterate(const value& v, std::size_t pos) const {
    std::vector<value> out;
    if (v.is_array()) return v.arr();
    if (v.is_object()) {
      for (const auto& [k, x] : v.obj().items) out.emplace_back(k);
    } else if (v.is_string()) {
      utf8::for_each_char(v.str(), [&](std::string_view c) { out.emplace_back(std::string(c)); });
    } else if (!v.is_undefined()) {
      fail(pos, std::string("'") + v.type_name() + "' object is not iterable");
    }
    return out;
  }

  // ---- expressions ----
  value eval(const expr& e) {
    switch (e.type) {
      case expr::kind::literal: return e.literal;
      case expr::kind::name: return lookup(e.name);
      case expr::kind::attr: return get_attr(eval(*e.args[0]), e.name, e.pos, e.args[0].get());
      case expr::kind::item: return get_item(eval(*e.args[0]), eval(*e.args[1]), e.pos, e.args[0].get());
      case expr::kind::slice: return slice(e);
      case expr::kind::call: return call(e);
      case expr::kind::filter: return filter(e);
      case expr::kind::test: return test(e) != e.negated;
      case expr::kind::not_: return !eval(*e.args[0]).truthy();
      case expr::kind::neg:
      case expr::kind::pos: {
        const value v = eval(*e.args[0]);
        if (!v.is_number())
          fail(e.pos, std::string("bad operand type for unary ") + (e.type == expr::kind::neg ? "-" : "+") + ": '" +
                          v.type_name() + "'");
        if (e.type == expr::kind::pos) return v.is_float() ? v : value(v.as_int());
        return v.is_float() ? value(-v.as_double()) : value(-v.as_int());
      }
      case expr::kind::binary: return binary(e);
      case expr::kind::compare: {
        value left = eval(*e.args[0]);
        for (std::size_t i = 0; i < e.ops.size(); ++i) {
          value right = eval(*e.args[i + 1]);
          if (!compare_op(e.ops[i], left, right, e.pos)) return false;
          left = std::move(right);
        }
        return true;
      }
      case expr::kind::and_: {
        value l = eval(*e.args[0]);
        return l.truthy() ? eval(*e.args[1]) : l;
      }
      case expr::kind::or_: {
        value l = eval(*e.args[0]);
        return l.truthy() ? l : eval(*e.args[1]);
      }
      case expr::kind::cond:
        if (eval(*e.args[1]).truthy()) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : value{};
      case expr::kind::list:
      case expr::kind::tuple: {
        array a;
        for (const auto& x : e.args) a.push_back(eval(*x));
        return a;
      }
      case expr::kind::dict: {
        object o;
        for (std::size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const value k = eval(*e.args[i]);
          if (!k.is_string()) fail(e.args[i]->pos, "dict keys must be strings here");
          o.set(k.str(), eval(*e.args[i + 1]));
        }
        return o;
      }
    }
    return {};
  }

  static std::string describe(const expr* subject) {
    if (subject && subject->type == expr::kind::name) return "'" + subject->name + "'";
    if (subject && subject->type == expr::kind::attr) return "'" + subject->name + "'";
    return "value";
  }

  /// x.name: a dict's key (Jinja tries the attribute first, but dicts have none templates use
  /// as values); undefined if absent. Attributes of an undefined value are an error.
  value get_attr(const value& v, const std::string& name, std::size_t pos, const expr* subject) const {
    if (v.is_undefined()) fail(pos, describe(subject) + " is undefined (reading attribute '" + name + "')");
    if (v.is_object())
      if (const auto* f = v.obj().find(name)) return *f;
    return {};
  }

  static std::int64_t length(const value& v) {
    if (v.is_string()) return std::int64_t(to_u32(v.str()).size());
    if (v.is_array()) return std::int64_t(v.arr().size());
    if (v.is_object()) return std::int64_t(v.obj().items.size());
    return 0;
  }

  /// x[key]: list and string indices (negative from the end), dict keys; out of range or
  /// missing is undefined, as in Jinja.
  value get_item(const value& v, const value& key, std::size_t pos, const expr* subject) const {
    if (v.is_undefined()) fail(pos, describe(subject) + " is undefined (subscripted)");
    if (v.is_object()) {
      if (key.is_string())
        if (const auto* f = v.obj().find(key.str())) return *f;
      return {};
    }
    if ((v.is_array() || v.is_string()) && (key.is_int() || key.is_bool())) {
      std::int64_t i = key.as_int();
      const std::int64_t n = length(v);
      if (i < 0) i += n;
      if (i < 0 || i >= n) return {};
      if (v.is_array()) return v.arr()[std::size_t(i)];
      return to_u8(to_u32(v.str()).substr(std::size_t(i), 1));
    }
    return {};
  }

  value slice(const expr& e) {
    const value v = eval(*e.args[0]);
    auto bound = [&](const expr_ptr& p) -> std::optional<std::int64_t> {
      if (!p) return std::nullopt;
      const value b = eval(*p);
      if (b.is_none()) return std::nullopt;
      if (!b.is_int() && !b.is_bool()) fail(p->pos, "slice indices must be integers");
      return b.as_int();
    };
    const auto start = bound(e.args[1]), stop = bound(e.args[2]), step_opt = bound(e.args[3]);
    const std::int64_t step = step_opt.value_or(1);
    if (step == 0) fail(e.pos, "slice step cannot be zero");
    if (!v.is_array() && !v.is_string()) fail(e.pos, std::string("'") + v.type_name() + "' object cannot be sliced");
    const std::int64_t n = length(v);
    // Python's slice.indices()
    auto clamp = [&](std::optional<std::int64_t> x, std::int64_t dflt) {
      if (!x) return dflt;
      std::int64_t i = *x;
      if (i < 0) i += n;
      if (step > 0) return std::clamp<std::int64_t>(i, 0, n);
      return std::clamp<std::int64_t>(i, -1, n - 1);
    };
    const std::int64_t b = clamp(start, step > 0 ? 0 : n - 1), en = clamp(stop, step > 0 ? n : -1);
    std::vector<std::size_t> picks;
    for (std::int64_t i = b; step > 0 ? i < en : i > en; i += step) picks.push_back(std::size_t(i));
    if (v.is_array()) {
      array out;
      for (const auto i : picks) out.push_back(v.arr()[i]);
      return out;
    }
    const auto u = to_u32(v.str());
    std::u32string out;
    for (const auto i : picks) out += u[i];
    return to_u8(out);
  }

  call_args eval_args(const expr& e, std::size_t first) {
    call_args a;
    const std::size_t n_kw = e.keywords.size();
    const std::size_t n_pos = e.args.size() - first - n_kw;
    for (std::size_t i = 0; i < n_pos; ++i) a.positional.push_back(eval(*e.args[first + i]));
    for (std::size_t i = 0; i < n_kw; ++i) a.keyword.emplace_back(e.keywords[i], eval(*e.args[first + n_pos + i]));
    return a;
  }

  value call(const expr& e) {
    const expr& callee = *e.args[0];
    if (callee.type == expr::kind::attr) {  // a method of a str or dict, or a function stored in a dict (loop.cycle)
      const value self = eval(*callee.args[0]);
      if (self.is_undefined())
        fail(callee.pos, describe(callee.args[0].get()) + " is undefined (calling '" + callee.name + "')");
      if (self.is_object())
        if (const auto* f = self.obj().find(callee.name); f && f->is_function()) {
          auto a = eval_args(e, 1);
          call_pos_ = e.pos;
          return f->fn()(a);
        }
      auto a = eval_args(e, 1);
      return method(self, callee.name, a, e.pos);
    }
    const value f = eval(callee);
    if (!f.is_function()) fail(e.pos, describe(&callee) + (f.is_undefined() ? " is undefined" : " is not callable"));
    auto a = eval_args(e, 1);
    call_pos_ = e.pos;
    return f.fn()(a);
  }

  static value split(const std::string& s, const value& sep, std::int64_t maxsplit) {
    array out;
    if (sep.is_none() || sep.is_undefined()) {  // runs of whitespace, no empty parts
      const auto u = to_u32(s);
      std::size_t i = 0;
      while (true) {
        while (i < u.size() && is_space(u[i])) ++i;
        if (i >= u.size()) break;
        if (maxsplit >= 0 && std::int64_t(out.size()) == maxsplit) {
          std::size_t e = u.size();
          while (e > i && is_space(u[e - 1])) --e;
          out.emplace_back(to_u8(u.substr(i, e - i)));
          break;
        }
        std::size_t j = i;
        while (j < u.size() && !is_space(u[j])) ++j;
        out.emplace_back(to_u8(u.substr(i, j - i)));
        i = j;
      }
      return out;
    }
    const std::string& d = sep.str();
    std::size_t at = 0;
    for (std::size_t hit;
         (maxsplit < 0 || std::int64_t(out.size()) < maxsplit) && (hit = s.find(d, at)) != std::string::npos;
         at = hit + d.size())
      out.emplace_back(s.substr(at, hit - at));
    out.emplace_back(s.substr(at));
    return out;
  }

  std::string need_string(const value& v, const char* what, std::size_t pos) const {
    if (!v.is_string()) fail(pos, std::string(what) + " needs a string, not '" + v.type_name() + "'");
    return v.str();
  }

  value method(const value& self, const std::string& name, call_args& a, std::size_t pos) {
    if (self.is_string()) {
      const std::string& s = self.str();
      auto chars = [&]() -> std::optional<std::string> {
        const value c = a.get(0, "chars");
        if (c.is_undefined() || c.is_none()) return std::nullopt;
        return need_string(c, "strip()", pos);
      };
      if (name == "strip") return strip(s, true, true, chars());
      if (name == "lstrip") return strip(s, true, false, chars());
      if (name == "rstrip") return strip(s, false, true, chars());
      if (name == "upper") return map_case(s, true);
      if (name == "lower") return map_case(s, false);
      if (name == "title") return title(s);
      if (name == "capitalize") return capitalize(s);
      if (name == "split") {
        const value sep = a.get(0, "sep");
        if (sep.is_string() && sep.str().empty()) fail(pos, "split() separator is empty");
        if (!sep.is_string() && !sep.is_none() && !sep.is_undefined()) fail(pos, "split() separator must be a string");
        const value m = a.get(1, "maxsplit", std::int64_t(-1));
        return split(s, sep, m.as_int());
      }
      if (name == "startswith" || name == "endswith") {
        const value p = a.get(0, "prefix");
        std::vector<std::string> options;
        if (p.is_array())
          for (const auto& x : p.arr()) options.push_back(need_string(x, name.c_str(), pos));
        else options.push_back(need_string(p, name.c_str(), pos));
        for (const auto& o : options) {
          if (name == "startswith" ? s.compare(0, o.size(), o) == 0 && s.size() >= o.size()
                                   : s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0)
            return true;
        }
        return false;
      }
      if (name == "replace") {
        const auto from = need_string(a.get(0, "old"), "replace()", pos),
                   to = need_string(a.get(1, "new"), "replace()", pos);
        return replace(s, from, to, a.get(2, "count", std::int64_t(-1)).as_int());
      }
      if (name == "find" || name == "count") {
        const auto sub = need_string(a.get(0, "sub"), name.c_str(), pos);
        if (name == "find") {
          const auto at = s.find(sub);
          return at == std::string::npos ? std::int64_t(-1) : std::int64_t(to_u32(s.substr(0, at)).size());
        }
        if (sub.empty()) return std::int64_t(to_u32(s).size() + 1);
        std::int64_t n = 0;
        for (std::size_t at = 0; (at = s.find(sub, at)) != std::string::npos; at += sub.size()) ++n;
        return n;
      }
      if (name == "join") {
        std::string out;
        const auto items = iterate(a.get(0, "iterable"), pos);
        for (std::size_t i = 0; i < items.size(); ++i) out += (i ? s : "") + need_string(items[i], "join()", pos);
        return out;
      }
    } else if (self.is_object() && !self.obj().is_namespace) {
      if (name == "items") {
        array out;
        for (const auto& [k, v] : self.obj().items) out.push_back(array{k, v});
        return out;
      }
      if (name == "keys" || name == "values") {
        array out;
        for (const auto& [k, v] : self.obj().items) out.push_back(name == "keys" ? value(k) : v);
        return out;
      }
      if (name == "get") {
        const value k = a.get(0, "key");
        if (k.is_string())
          if (const auto* f = self.obj().find(k.str())) return *f;
        return a.get(1, "default", nullptr);
      }
    }
    fail(pos, std::string("'") + self.type_name() + "' object has no method '" + name + "' here");
  }

  static std::string replace(const std::string& s, const std::string& from, const std::string& to, std::int64_t count) {
    if (from.empty()) {  // Python inserts `to` around every character
      std::string out;
      std::int64_t n = 0;
      utf8::for_each_char(s, [&](std::string_view c) {
        if (count < 0 || n++ < count) out += to;
        out.append(c);
      });
      if (count < 0 || n < count) out += to;
      return out;
    }
    std::string out;
    std::size_t at = 0;
    std::int64_t n = 0;
    for (std::size_t hit; (count < 0 || n < count) && (hit = s.find(from, at)) != std::string::npos;
         at = hit + from.size(), ++n)
      out.append(s, at, hit - at).append(to);
    return out.append(s, at);
  }

  static std::string capitalize(const std::string& s) {
    const auto u = to_u32(s);
    if (u.empty()) return s;
    return map_case(to_u8(u.substr(0, 1)), true) + map_case(to_u8(u.substr(1)), false);
  }

  /// Jinja's title filter: each word (after -, whitespace, or an opening bracket) capitalised.
  static std::string title(const std::string& s) {
    const auto u = to_u32(s);
    std::string out;
    bool start = true;
    for (const auto c : u) {
      const bool boundary = is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
      const std::string ch = to_u8(std::u32string(1, c));
      out += boundary ? ch : map_case(ch, start);
      start = boundary;
    }
    return out;
  }

  // ---- operators ----
  value binary(const expr& e) {
    const value l = eval(*e.args[0]), r = eval(*e.args[1]);
    const std::string& op = e.name;
    if (op == "~") return checked(to_str(l) + to_str(r), e.pos);
    if (l.is_number() && r.is_number()) {
      const bool ints = !l.is_float() && !r.is_float();
      const std::int64_t a = ints ? l.as_int() : 0, b = ints ? r.as_int() : 0;
      const double x = l.as_double(), y = r.as_double();
      if (op == "+") return ints ? value(a + b) : value(x + y);
      if (op == "-") return ints ? value(a - b) : value(x - y);
      if (op == "*") return ints ? value(a * b) : value(x * y);
      if (op == "/") {
        if (y == 0) fail(e.pos, "division by zero");
        return x / y;
      }
      if (op == "//" || op == "%") {
        if (y == 0) fail(e.pos, "integer division or modulo by zero");
        if (ints) {
          std::int64_t q = a / b, m = a % b;
          if (m != 0 && ((m < 0) != (b < 0))) --q, m += b;  // Python floors
          return op == "//" ? value(q) : value(m);
        }
        const double q = std::floor(x / y);
        return op == "//" ? value(q) : value(x - q * y);
      }
      if (op == "**") {
        if (ints && b >= 0) {
          std::int64_t p = 1;
          for (std::int64_t i = 0; i < b; ++i) p *= a;
          return p;
        }
        return std::pow(x, y);
      }
    }
    if (op == "+" && l.is_string() && r.is_string()) return checked(l.str() + r.str(), e.pos);
    if (op == "+" && l.is_array() && r.is_array()) {
      array out = l.arr();
      out.insert(out.end(), r.arr().begin(), r.arr().end());
      return out;
    }
    if (op == "*" && (((l.is_string() || l.is_array()) && (r.is_int() || r.is_bool())) ||
                      ((r.is_string() || r.is_array()) && (l.is_int() || l.is_bool())))) {
      const value& seq = l.is_string() || l.is_array() ? l : r;
      const std::int64_t n = (l.is_string() || l.is_array() ? r : l).as_int();
      if (n > 0 && std::uint64_t(n) * std::uint64_t(seq.is_string() ? seq.str().size() : seq.arr().size()) > max_string)
        fail(e.pos, "repetition too long");
      if (seq.is_string()) {
        std::string out;
        for (std::int64_t i = 0; i < n; ++i) out += seq.str();
        return out;
      }
      array out;
      for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.arr().begin(), seq.arr().end());
      return out;
    }
    if (op == "%" && l.is_string()) return percent_format(l.str(), r, e.pos);
    fail(e.pos, "unsupported operand types for " + op + ": '" + l.type_name() + "' and '" + r.type_name() + "'");
  }

  /// Python's str % args for %s, %d, %i, %r and %%.
  std::string percent_format(const std::string& f, const value& args, std::size_t pos) const {
    const std::vector<value> list = args.is_array() ? args.arr() : std::vector<value>{args};
    std::string out;
    std::size_t next = 0;
    for (std::size_t i = 0; i < f.size(); ++i) {
      if (f[i] != '%') {
        out += f[i];
        continue;
      }
      if (++i >= f.size()) fail(pos, "incomplete format");
      const char c = f[i];
      if (c == '%') {
        out += '%';
        continue;
      }
      if (next >= list.size()) fail(pos, "not enough arguments for format string");
      const value& v = list[next++];
      if (c == 's') out += to_str(v);
      else if (c == 'r') out += repr(v);
      else if (c == 'd' || c == 'i') {
        if (!v.is_number()) fail(pos, "%d format: a number is required");
        out += std::to_string(v.is_float() ? std::int64_t(v.as_double()) : v.as_int());
      } else fail(pos, std::string("format character '%") + c + "' is not supported");
    }
    if (next < list.size()) fail(pos, "not all arguments converted during string formatting");
    return out;
  }

  bool contains(const value& container, const value& item, std::size_t pos) const {
    if (container.is_string()) {
      if (!item.is_string()) fail(pos, "'in <string>' requires a string as left operand");
      return container.str().find(item.str()) != std::string::npos;
    }
    if (container.is_array()) {
      for (const auto& x : container.arr())
        if (equal(x, item)) return true;
      return false;
    }
    if (container.is_object()) return item.is_string() && container.obj().find(item.str()) != nullptr;
    if (container.is_undefined()) return false;
    fail(pos, std::string("argument of type '") + container.type_name() + "' is not iterable");
  }

  bool compare_op(const std::string& op, const value& l, const value& r, std::size_t pos) const {
    if (op == "==") return equal(l, r);
    if (op == "!=") return !equal(l, r);
    if (op == "in") return contains(r, l, pos);
    if (op == "not in") return !contains(r, l, pos);
    const auto c = compare(l, r);
    if (!c) fail(pos, "'" + op + "' not supported between '" + l.type_name() + "' and '" + r.type_name() + "'");
    if (op == "<") return *c < 0;
    if (op == ">") return *c > 0;
    if (op == "<=") return *c <= 0;
    return *c >= 0;
  }

  // ---- tests ----
  bool test(const expr& e) {
    const auto& name = e.name;
    if (name == "defined" || name == "undefined") {
      const bool defined = !eval(*e.args[0]).is_undefined();
      return name == "defined" ? defined : !defined;
    }
    const value v = eval(*e.args[0]);
    auto a = eval_args(e, 1);
    const value arg = a.get(0, "value");
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_int() || v.is_float() || v.is_bool();
    if (name == "integer") return v.is_int();
    if (name == "float") return v.is_float();
    if (name == "boolean") return v.is_bool();
    if (name == "true") return v.is_bool() && v.as_int() == 1;
    if (name == "false") return v.is_bool() && v.as_int() == 0;
    if (name == "mapping") return v.is_object();
    if (name == "iterable") return v.is_array() || v.is_object() || v.is_string();
    if (name == "sequence") return v.is_array() || v.is_object() || v.is_string();
    if (name == "callable") return v.is_function();
    if (name == "lower") return v.is_string() && map_case(v.str(), false) == v.str();
    if (name == "upper") return v.is_string() && map_case(v.str(), true) == v.str();
    if (name == "odd" || name == "even" || name == "divisibleby") {
      if (!v.is_int() && !v.is_bool()) fail(e.pos, "test '" + name + "' needs an integer");
      const std::int64_t n = v.as_int();
      if (name == "odd") return n % 2 != 0;
      if (name == "even") return n % 2 == 0;
      if (!arg.is_int() || arg.as_int() == 0) fail(e.pos, "divisibleby needs a non-zero integer");
      return n % arg.as_int() == 0;
    }
    if (name == "sameas")
      return v.v.index() == arg.v.index() && (v.is_none() || v.is_undefined() || (v.is_bool() && equal(v, arg)));
    if (name == "in") return contains(arg, v, e.pos);
    static const std::map<std::string, std::string> ops{
        {"eq", "=="}, {"equalto", "=="}, {"==", "=="}, {"ne", "!="}, {"!=", "!="}, {"lt", "<"}, {"<", "<"},
        {"gt", ">"},  {">", ">"},        {"le", "<="}, {"<=", "<="}, {"ge", ">="}, {">=", ">="}};
    return compare_op(ops.at(name), v, arg, e.pos);
  }

  /// Applies test `name` (with `args`) to `v`, for select/reject.
  bool run_test(const std::string& name, const value& v, const std::vector<value>& args, std::size_t pos) {
    if (!test_names().count(name)) fail(pos, "test '" + name + "' is not supported");
    expr t;
    t.type = expr::kind::test;
    t.pos = pos;
    t.name = name;
    auto lit = [&](const value& x) {
      auto p = std::make_unique<expr>();
      p->type = expr::kind::literal;
      p->literal = x;
      p->pos = pos;
      return p;
    };
    t.args.push_back(lit(v));
    for (const auto& x : args) t.args.push_back(lit(x));
    return test(t);
  }

  // ---- filters ----
  value filter(const expr& e) {
    const value v = eval(*e.args[0]);
    auto a = eval_args(e, 1);
    return apply_filter(e.name, v, a, e.pos);
  }

  value apply_filter(const std::string& name, const value& v, call_args& a, std::size_t pos) {
    if (name == "default" || name == "d") {
      const bool boolean = a.get(1, "boolean", false).truthy();
      return (v.is_undefined() || (boolean && !v.truthy())) ? a.get(0, "default_value", std::string()) : v;
    }
    if (name == "safe") return v;
    if (name == "string") return to_str(v);
    if (name == "length" || name == "count") {
      if (!v.is_undefined() && !v.is_string() && !v.is_array() && !v.is_object())
        fail(pos, std::string("object of type '") + v.type_name() + "' has no len()");
      return length(v);
    }
    if (name == "trim") {
      const value c = a.get(0, "chars");
      return strip(to_str(v), true, true, c.is_string() ? std::optional(c.str()) : std::nullopt);
    }
    if (name == "upper" || name == "lower") return map_case(to_str(v), name == "upper");
    if (name == "capitalize") return capitalize(to_str(v));
    if (name == "title") return title(to_str(v));
    if (name == "replace") {
      return replace(to_str(v), to_str(a.get(0, "old")), to_str(a.get(1, "new")),
                     a.get(2, "count", std::int64_t(-1)).as_int());
    }
    if (name == "escape" || name == "e") {
      std::string out;
      for (const char c : to_str(v)) {
        switch (c) {
          case '&': out += "&amp;"; break;
          case '<': out += "&lt;"; break;
          case '>': out += "&gt;"; break;
          case '"': out += "&#34;"; break;
          case '\'': out += "&#39;"; break;
          default: out += c;
        }
      }
      return out;
    }
    if (name == "tojson") {
      const value ind = a.get(0, "indent", nullptr);
      std::string out;
      if (!to_json(v, out, ind.is_int() ? int(ind.as_int()) : -1))
        fail(pos, "tojson: " + std::string(v.type_name()) + " is not JSON serializable");
      return out;
    }
    if (name == "int") {
      if (v.is_number()) return v.is_float() ? std::int64_t(v.as_double()) : v.as_int();
      if (v.is_string()) {
        std::int64_t out = 0;
        const auto s = strip(v.str(), true, true);
        const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
        if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return out;
      }
      return a.get(0, "default", std::int64_t(0));
    }
    if (name == "float") {
      if (v.is_number()) return v.as_double();
      if (v.is_string()) {
        char* end = nullptr;
        const auto s = strip(v.str(), true, true);
        const double d = std::strtod(s.c_str(), &end);
        if (!s.empty() && end == s.c_str() + s.size()) return d;
      }
      return a.get(0, "default", 0.0);
    }
    if (name == "abs") {
      if (!v.is_number()) fail(pos, std::string("bad operand type for abs(): '") + v.type_name() + "'");
      return v.is_float() ? value(std::fabs(v.as_double())) : value(std::int64_t(std::llabs(v.as_int())));
    }
    if (name == "round") {
      if (!v.is_number()) fail(pos, "round needs a number");
      const auto precision = a.get(0, "precision", std::int64_t(0)).as_int();
      const double scale = std::pow(10.0, double(precision));
      return std::nearbyint(v.as_double() * scale) / scale;
    }
    if (name == "wordcount") return std::int64_t(split(to_str(v), nullptr, -1).arr().size());
    if (name == "indent") {
      const auto w = a.get(0, "width", std::int64_t(4));
      const std::string pad =
          w.is_string() ? w.str() : std::string(std::size_t(std::max<std::int64_t>(0, w.as_int())), ' ');
      const bool first = a.get(1, "first", false).truthy(), blank = a.get(2, "blank", false).truthy();
      const std::string s = to_str(v);
      std::string out;
      std::size_t at = 0;
      for (bool line0 = true;; line0 = false) {
        const auto nl = s.find('\n', at);
        const std::string line = s.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        if ((!line0 || first) && (blank || !strip(line, true, true).empty())) out += pad;
        out += line;
        if (nl == std::string::npos) break;
        out += '\n';
        at = nl + 1;
      }
      return out;
    }
    // filters over sequences
    std::vector<value> items = iterate(v, pos);
    if (name == "first") return items.empty() ? value{} : items.front();
    if (name == "last") return items.empty() ? value{} : items.back();
    if (name == "list") return array(items.begin(), items.end());
    if (name == "reverse") {
      if (v.is_string()) return to_u8(std::u32string(to_u32(v.str()).rbegin(), to_u32(v.str()).rend()));
      return array(items.rbegin(), items.rend());
    }
    if (name == "items") {
      if (!v.is_object() && !v.is_undefined()) fail(pos, "items needs a mapping");
      return method(v.is_undefined() ? value(object{}) : v, "items", a, pos);
    }
    if (name == "dictsort") {
      if (!v.is_object()) fail(pos, "dictsort needs a mapping");
      auto pairs = v.obj().items;
      std::stable_sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) {
        return map_case(x.first, false) < map_case(y.first, false);
      });
      array out;
      for (const auto& [k, x] : pairs) out.push_back(array{k, x});
      return out;
    }
    // attribute= is positional only for join (after d) and sum (first)
    const std::size_t attribute_index = name == "join" ? 1 : name == "sum" ? 0 : std::size_t(-1);
    const std::string attribute = to_str(a.get(attribute_index, "attribute", std::string()));
    auto attr_of = [&](const value& x) {
      if (attribute.empty()) return x;
      value cur = x;
      std::size_t at = 0;
      while (true) {  // dotted paths, as Jinja's make_attrgetter
        const auto dot = attribute.find('.', at);
        const std::string part = attribute.substr(at, dot == std::string::npos ? std::string::npos : dot - at);
        cur = cur.is_undefined() ? cur
                                 : get_item(cur,
                                            !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)
                                                ? value(std::int64_t(std::stoll(part)))
                                                : value(part),
                                            pos, nullptr);
        if (dot == std::string::npos) return cur;
        at = dot + 1;
      }
    };
    if (name == "join") {
      const std::string sep = to_str(a.get(0, "d", std::string()));
      std::string out;
      for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + to_str(attr_of(items[i]));
      return out;
    }
    if (name == "map") {
      array out;
      if (!attribute.empty()) {
        const value dflt = a.get(99, "default");
        for (const auto& x : items) {
          value y = attr_of(x);
          out.push_back(y.is_undefined() && !dflt.is_undefined() ? dflt : y);
        }
        return out;
      }
      if (a.positional.empty() || !a.positional[0].is_string()) fail(pos, "map needs a filter name or attribute=");
      const std::string f = a.positional[0].str();
      if (!filter_names().count(f)) fail(pos, "filter '" + f + "' is not supported");
      call_args rest;
      rest.positional.assign(a.positional.begin() + 1, a.positional.end());
      rest.keyword = a.keyword;
      for (const auto& x : items) out.push_back(apply_filter(f, x, rest, pos));
      return out;
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
      const bool by_attr = name == "selectattr" || name == "rejectattr",
                 keep_if = name == "select" || name == "selectattr";
      const std::size_t first_test = by_attr ? 1 : 0;
      if (by_attr && (a.positional.empty() || !a.positional[0].is_string()))
        fail(pos, name + " needs an attribute name");
      const std::string attr = by_attr ? a.positional[0].str() : std::string();
      const std::string test_name = a.positional.size() > first_test ? to_str(a.positional[first_test]) : std::string();
      const std::vector<value> test_args(
          a.positional.begin() + std::ptrdiff_t(std::min(a.positional.size(), first_test + 1)), a.positional.end());
      array out;
      for (const auto& x : items) {
        const value subject = by_attr ? (x.is_undefined() ? x : get_item(x, attr, pos, nullptr)) : x;
        const bool pass = test_name.empty() ? subject.truthy() : run_test(test_name, subject, test_args, pos);
        if (pass == keep_if) out.push_back(x);
      }
      return out;
    }
    if (name == "unique") {
      array out;
      for (const auto& x : items) {
        const value key = attr_of(x);
        bool seen = false;
        for (const auto& y : out) seen = seen || equal(attr_of(y), key);
        if (!seen) out.push_back(x);
      }
      return out;
    }
    if (name == "sort" || name == "min" || name == "max") {
      const bool reverse = name == "sort" && a.get(0, "reverse", false).truthy();
      const bool case_sensitive = a.get(name == "sort" ? 1 : 0, "case_sensitive", false).truthy();
      auto key = [&](const value& x) {
        value k = attr_of(x);
        return !case_sensitive && k.is_string() ? value(map_case(k.str(), false)) : k;
      };
      auto less = [&](const value& x, const value& y) {
        const auto c = compare(key(x), key(y));
        if (!c) fail(pos, std::string("cannot order '") + x.type_name() + "' and '" + y.type_name() + "'");
        return *c < 0;
      };
      if (name == "min" || name == "max") {
        if (items.empty()) return {};
        return name == "min" ? *std::min_element(items.begin(), items.end(), less)
                             : *std::max_element(items.begin(), items.end(), less);
      }
      std::stable_sort(items.begin(), items.end(),
                       [&](const value& x, const value& y) { return reverse ? less(y, x) : less(x, y); });
      return array(items.begin(), items.end());
    }
    if (name == "sum") {
      value total = a.get(1, "start", std::int64_t(0));
      for (const auto& x : items) {
        const value y = attr_of(x);
        if (!y.is_number() || !total.is_number()) fail(pos, "sum needs numbers");
        total = total.is_float() || y.is_float() ? value(total.as_double() + y.as_double())
                                                 : value(total.as_int() + y.as_int());
      }
      return total;
    }
    fail(pos, "filter '" + name + "' is not supported");
  }

  /// Strings longer than this are an error (doubling a string in a loop would exhaust memory).
  std::string checked(std::string s, std::size_t pos) const {
    if (s.size() > max_string) fail(pos, "string longer than " + std::to_string(max_string) + " bytes");
    return s;
  }
  static constexpr std::size_t max_string = std::size_t(1) << 28;
  static constexpr int max_macro_depth = 100;

  const compiled_template& t_;
  int macro_depth_ = 0;
  std::vector<std::unordered_map<std::string, value>> scopes_;
  std::size_t call_pos_ = 0;  // position of the call being evaluated, for errors raised inside globals
};

inline std::string compiled_template::render(const object& variables) const { return renderer(*this, variables).run(); }

}  // namespace nexus::jinja
