// Lexer and parser of the Jinja subset (see nexus/chat/jinja.hpp), with Jinja2's lexing rules as
// transformers configures them: trim_blocks, lstrip_blocks, `-` and `+` whitespace control.
#pragma once

#include <charconv>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nexus/chat/jinja_value.hpp"
#include "nexus/core/error.hpp"

namespace nexus::jinja {

// ---- tokens ---------------------------------------------------------------------------------------

struct token {
  enum class kind { text, var_begin, var_end, block_begin, block_end, name, string, integer, number, op, eof } type;
  std::string text;  // text, name, string (unescaped), number, op
  std::size_t pos;   // byte offset in the normalised source
};

inline bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
inline bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

/// Position of a byte offset as 1-based line and column (in bytes).
inline std::pair<std::size_t, std::size_t> line_column(std::string_view src, std::size_t pos) {
  pos = std::min(pos, src.size());
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < pos; ++i) {
    if (src[i] == '\n') ++line, col = 1;
    else ++col;
  }
  return {line, col};
}

class lexer {
 public:
  lexer(std::string src, std::string where) : src_(std::move(src)), where_(std::move(where)) {}

  [[noreturn]] void fail(std::size_t pos, const std::string& what) const {
    const auto [line, col] = line_column(src_, pos);
    throw template_error(where_, line, col, what);
  }

  std::vector<token> run() {
    std::vector<token> out;
    std::size_t at = 0;
    bool line_starting = true;
    while (at <= src_.size()) {
      std::size_t tag = at;
      while ((tag = src_.find('{', tag)) != std::string::npos &&
             (tag + 1 >= src_.size() || std::string_view("{%#").find(src_[tag + 1]) == std::string_view::npos))
        ++tag;
      std::string text = src_.substr(at, tag == std::string::npos ? std::string::npos : tag - at);
      if (tag == std::string::npos) {
        if (!text.empty()) out.push_back({token::kind::text, std::move(text), at});
        break;
      }
      const char kind = src_[tag + 1];
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      if (sign == '-') {
        text = strip(text, false, true);
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks: blocks and comments alone on their line
        const auto nl = text.rfind('\n');
        const std::size_t l = nl == std::string::npos ? 0 : nl + 1;
        if ((l > 0 || line_starting) && l < text.size() &&
            std::all_of(text.begin() + std::ptrdiff_t(l), text.end(), [](char c) { return is_space(char32_t(c)); }))
          text.resize(l);
      }
      if (!text.empty()) out.push_back({token::kind::text, std::move(text), at});
      std::size_t p = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        const auto end = src_.find("#}", p);
        if (end == std::string::npos) fail(tag, "comment not closed with #}");
        at = end + 2;
        if (end > p && src_[end - 1] == '-') at = skip_space(at);
        else if (!(end > p && src_[end - 1] == '+') && at < src_.size() && src_[at] == '\n') ++at;
      } else {
        out.push_back({kind == '{' ? token::kind::var_begin : token::kind::block_begin, {}, tag});
        at = lex_tag(p, kind == '{', out);
      }
      line_starting = at > 0 && src_[at - 1] == '\n';
    }
    out.push_back({token::kind::eof, {}, src_.size()});
    return out;
  }

  const std::string& source() const { return src_; }

 private:
  std::size_t skip_space(std::size_t at) const {
    while (at < src_.size()) {
      const auto n = std::min(utf8::sequence_length(static_cast<unsigned char>(src_[at])), src_.size() - at);
      if (!is_space(char32_t(utf8::decode(std::string_view(src_).substr(at, n))))) break;
      at += n;
    }
    return at;
  }

  /// Tokens of one {{ }} or {% %} tag from `p`; returns the offset after its end (and the
  /// whitespace its end marker removes).
  std::size_t lex_tag(std::size_t p, bool variable, std::vector<token>& out) {
    const std::string_view close = variable ? "}}" : "%}";
    int depth = 0;  // open brackets: "}}" inside a dict literal does not end the tag
    while (true) {
      p = skip_space(p);
      if (p >= src_.size()) fail(p, std::string("tag not closed with ") + std::string(close));
      if (depth == 0) {
        for (const char s : {'-', '+', '\0'}) {
          const std::size_t q = p + (s ? 1 : 0);
          if ((s && src_[p] != s) || src_.compare(q, 2, close) != 0) continue;
          out.push_back({variable ? token::kind::var_end : token::kind::block_end, {}, p});
          std::size_t at = q + 2;
          if (s == '-') at = skip_space(at);
          else if (!variable && s != '+' && at < src_.size() && src_[at] == '\n') ++at;  // trim_blocks
          return at;
        }
      }
      const char c = src_[p];
      if (is_name_start(c)) {
        std::size_t e = p;
        while (e < src_.size() && is_name_char(src_[e])) ++e;
        out.push_back({token::kind::name, src_.substr(p, e - p), p});
        p = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        std::size_t e = p;
        bool is_float = false;
        while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
        if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
          is_float = true;
          for (++e; e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]));) ++e;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
          std::size_t f = e + 1;
          if (f < src_.size() && (src_[f] == '+' || src_[f] == '-')) ++f;
          if (f < src_.size() && std::isdigit(static_cast<unsigned char>(src_[f]))) {
            is_float = true;
            for (e = f; e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]));) ++e;
          }
        }
        out.push_back({is_float ? token::kind::number : token::kind::integer, src_.substr(p, e - p), p});
        p = e;
      } else if (c == '\'' || c == '"') {
        out.push_back({token::kind::string, lex_string(p), p});
      } else {
        static const char* ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                    ">",  "(",  ")",  "[",  "]",  "{",  "}", ".", ",", ":", "|", "="};
        std::string op;
        for (const char* o : ops)
          if (src_.compare(p, std::strlen(o), o) == 0) {
            op = o;
            break;
          }
        if (op.empty()) fail(p, std::string("unexpected character '") + c + "'");
        if (op == "(" || op == "[" || op == "{") ++depth;
        if ((op == ")" || op == "]" || op == "}") && depth > 0) --depth;
        out.push_back({token::kind::op, op, p});
        p += op.size();
      }
    }
  }

  /// A quoted literal from `p` (advanced past it), with Python's escapes.
  std::string lex_string(std::size_t& p) {
    const char q = src_[p];
    const std::size_t start = p++;
    std::string out;
    while (true) {
      if (p >= src_.size()) fail(start, "string literal not closed");
      const char c = src_[p++];
      if (c == q) return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (p >= src_.size()) fail(start, "string literal not closed");
      const char e = src_[p++];
      auto hex = [&](int n) {
        if (p + std::size_t(n) > src_.size()) fail(p, "truncated escape");
        std::uint32_t cp = 0;
        for (int i = 0; i < n; ++i) {
          const char h = src_[p++];
          if (!std::isxdigit(static_cast<unsigned char>(h))) fail(p - 1, "bad hex escape");
          cp = cp * 16 +
               std::uint32_t(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        utf8::append(out, cp);
      };
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': hex(2); break;
        case 'u': hex(4); break;
        case 'U': hex(8); break;
        default: out += '\\', out += e;  // unknown escapes stay as written, as in Python
      }
    }
  }

  std::string src_, where_;
};

// ---- syntax tree ----------------------------------------------------------------------------------

struct expr;
using expr_ptr = std::unique_ptr<expr>;

struct expr {
  enum class kind {
    literal,
    name,
    attr,
    item,
    slice,
    call,
    filter,
    test,
    not_,
    neg,
    pos,
    binary,
    compare,
    and_,
    or_,
    cond,
    list,
    tuple,
    dict
  };
  kind type;
  std::size_t pos = 0;
  value literal;
  std::string name;                   // name, attribute, filter, test, binary operator
  std::vector<std::string> ops;       // compare: one operator between each pair of operands
  std::vector<expr_ptr> args;         // operands; call/filter/test: [callee or subject, positional..., keyword...]
  std::vector<std::string> keywords;  // names of the trailing keyword arguments
  bool negated = false;               // test: `is not`
};

struct node;
using body = std::vector<node>;

struct node {
  enum class kind { text, output, if_, for_, set, set_block, macro, break_, continue_, block };
  node(kind k, std::size_t p, std::string t = {}) : type(k), pos(p), text(std::move(t)) {}
  kind type;
  std::size_t pos = 0;
  std::string text;                                 // text; set_block/macro: name
  expr_ptr value;                                   // output; set; for: the iterable
  std::vector<std::pair<expr_ptr, body>> branches;  // if/elif
  body children, otherwise;                         // for/set_block/macro/block body; if/for else
  std::vector<std::string> targets;                 // for/set names; set ns.attr: {ns, attr}
  bool attribute_target = false;
  expr_ptr condition;               // for ... if condition
  std::vector<std::string> params;  // macro
  std::vector<expr_ptr> defaults;   // macro: defaults of the last params
};

inline const std::set<std::string>& filter_names() {
  static const std::set<std::string> names{
      "abs",     "capitalize", "count",  "d",      "default",    "dictsort", "e",          "escape",
      "first",   "float",      "indent", "int",    "items",      "join",     "last",       "length",
      "list",    "lower",      "map",    "max",    "min",        "reject",   "rejectattr", "replace",
      "reverse", "round",      "safe",   "select", "selectattr", "sort",     "string",     "sum",
      "title",   "tojson",     "trim",   "unique", "upper",      "wordcount"};
  return names;
}
inline const std::set<std::string>& test_names() {
  static const std::set<std::string> names{
      "boolean", "callable", "defined", "divisibleby", "eq",       "equalto",  "even",   "false", "float",
      "ge",      "gt",       "in",      "integer",     "iterable", "le",       "lower",  "lt",    "mapping",
      "ne",      "none",     "number",  "odd",         "sameas",   "sequence", "string", "true",  "undefined",
      "upper",   "==",       "!=",      "<",           ">",        "<=",       ">="};
  return names;
}

// ---- parser ---------------------------------------------------------------------------------------

class parser {
 public:
  parser(std::vector<token> tokens, const lexer& lex) : t_(std::move(tokens)), lex_(lex) {}

  body parse_template() {
    auto out = parse_body({});
    if (cur().type != token::kind::eof) lex_.fail(cur().pos, "unexpected tag");
    return out;
  }

 private:
  const token& cur() const { return t_[i_]; }
  const token& peek(std::size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  bool at_op(std::string_view op) const { return cur().type == token::kind::op && cur().text == op; }
  bool at_name(std::string_view n) const { return cur().type == token::kind::name && cur().text == n; }
  [[noreturn]] void fail(const std::string& what) const { lex_.fail(cur().pos, what); }
  std::string describe(const token& t) const {
    switch (t.type) {
      case token::kind::text: return "text";
      case token::kind::var_begin: return "'{{'";
      case token::kind::var_end: return "'}}'";
      case token::kind::block_begin: return "'{%'";
      case token::kind::block_end: return "'%}'";
      case token::kind::name: return "'" + t.text + "'";
      case token::kind::string: return "a string";
      case token::kind::integer:
      case token::kind::number: return "a number";
      case token::kind::op: return "'" + t.text + "'";
      case token::kind::eof: return "the end of the template";
    }
    return "?";
  }
  void expect_op(std::string_view op) {
    if (!at_op(op)) fail("expected '" + std::string(op) + "', found " + describe(cur()));
    ++i_;
  }
  void expect_name(std::string_view n) {
    if (!at_name(n)) fail("expected '" + std::string(n) + "', found " + describe(cur()));
    ++i_;
  }
  std::string take_name() {
    if (cur().type != token::kind::name) fail("expected a name, found " + describe(cur()));
    return t_[i_++].text;
  }
  void expect_block_end() {
    if (cur().type != token::kind::block_end) fail("expected '%}', found " + describe(cur()));
    ++i_;
  }

  /// Nodes up to a `{% name %}` whose name is in `ends` (left unconsumed, at its name) or the end.
  body parse_body(const std::set<std::string>& ends) {
    body out;
    while (true) {
      const auto& t = cur();
      if (t.type == token::kind::eof) {
        if (!ends.empty()) {
          const auto closer =
              std::find_if(ends.begin(), ends.end(), [](const std::string& e) { return e.rfind("end", 0) == 0; });
          fail("missing {% " + (closer != ends.end() ? *closer : *ends.begin()) + " %}");
        }
        return out;
      }
      if (t.type == token::kind::text) {
        out.emplace_back(node::kind::text, t.pos, t.text);
        ++i_;
      } else if (t.type == token::kind::var_begin) {
        ++i_;
        node n{node::kind::output, t.pos};
        n.value = parse_expression();
        if (cur().type != token::kind::var_end) fail("expected '}}', found " + describe(cur()));
        ++i_;
        out.push_back(std::move(n));
      } else if (t.type == token::kind::block_begin) {
        const auto& kw = peek();
        if (kw.type != token::kind::name) lex_.fail(kw.pos, "expected a statement name after '{%'");
        if (ends.count(kw.text)) {
          ++i_;
          return out;
        }
        ++i_;
        out.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  node parse_statement() {
    const auto guard = enter();
    const std::size_t pos = cur().pos;
    const std::string kw = take_name();
    if (kw == "if") {
      node n{node::kind::if_, pos};
      auto cond = parse_expression();
      expect_block_end();
      while (true) {
        auto b = parse_body({"elif", "else", "endif"});
        n.branches.emplace_back(std::move(cond), std::move(b));
        const std::string end = take_name();
        if (end == "elif") {
          cond = parse_expression();
          expect_block_end();
          continue;
        }
        if (end == "else") {
          expect_block_end();
          n.otherwise = parse_body({"endif"});
          expect_name("endif");
        }
        expect_block_end();
        return n;
      }
    }
    if (kw == "for") {
      node n{node::kind::for_, pos};
      const bool paren = at_op("(");
      if (paren) ++i_;
      n.targets.push_back(take_name());
      while (at_op(",")) ++i_, n.targets.push_back(take_name());
      if (paren) expect_op(")");
      expect_name("in");
      n.value = parse_or();
      if (at_name("if")) ++i_, n.condition = parse_or();
      if (at_name("recursive")) fail("recursive loops are not supported");
      expect_block_end();
      n.children = parse_body({"else", "endfor"});
      if (take_name() == "else") {
        expect_block_end();
        n.otherwise = parse_body({"endfor"});
        expect_name("endfor");
      }
      expect_block_end();
      return n;
    }
    if (kw == "set") {
      const std::string first = take_name();
      if (at_op(".")) {
        ++i_;
        node n{node::kind::set, pos};
        n.targets = {first, take_name()};
        n.attribute_target = true;
        expect_op("=");
        n.value = parse_expression();
        expect_block_end();
        return n;
      }
      node n{node::kind::set, pos};
      n.targets.push_back(first);
      while (at_op(",")) ++i_, n.targets.push_back(take_name());
      if (cur().type == token::kind::block_end && n.targets.size() == 1) {  // {% set x %}...{% endset %}
        ++i_;
        node b{node::kind::set_block, pos, first};
        b.children = parse_body({"endset"});
        expect_name("endset");
        expect_block_end();
        return b;
      }
      expect_op("=");
      n.value = parse_expression();
      if (at_op(",")) {  // {% set a, b = x, y %}: the value is a tuple
        auto t = make(expr::kind::tuple, n.value->pos);
        t->args.push_back(std::move(n.value));
        while (at_op(",")) ++i_, t->args.push_back(parse_expression());
        n.value = std::move(t);
      }
      expect_block_end();
      return n;
    }
    if (kw == "macro") {
      node n{node::kind::macro, pos, take_name()};
      expect_op("(");
      while (!at_op(")")) {
        n.params.push_back(take_name());
        if (at_op("=")) ++i_, n.defaults.push_back(parse_expression());
        else if (!n.defaults.empty()) fail("a parameter without default follows one with a default");
        if (!at_op(")")) expect_op(",");
      }
      ++i_;
      expect_block_end();
      n.children = parse_body({"endmacro"});
      expect_name("endmacro");
      if (cur().type == token::kind::name) ++i_;  // {% endmacro name %}
      expect_block_end();
      return n;
    }
    if (kw == "break" || kw == "continue") {
      expect_block_end();
      return node(kw == "break" ? node::kind::break_ : node::kind::continue_, pos);
    }
    if (kw == "generation") {  // transformers' assistant-mask tag: renders its body
      expect_block_end();
      node n{node::kind::block, pos};
      n.children = parse_body({"endgeneration"});
      expect_name("endgeneration");
      expect_block_end();
      return n;
    }
    lex_.fail(pos,
              "statement '" + kw + "' is not supported (supported: if, for, set, macro, break, continue, generation)");
  }

  // expression grammar, loosest first, as Jinja2's parser
  expr_ptr make(expr::kind k, std::size_t pos) {
    auto e = std::make_unique<expr>();
    e->type = k;
    e->pos = pos;
    return e;
  }

  expr_ptr parse_expression() {
    const auto guard = enter();
    auto e = parse_or();
    if (at_name("if")) {
      auto c = make(expr::kind::cond, cur().pos);
      ++i_;
      auto cond = parse_or();
      expr_ptr other;
      if (at_name("else")) ++i_, other = parse_expression();
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(other));
      return c;
    }
    return e;
  }

  // No conditional expression below this level: the iterable of a for loop stops before `if`.
  expr_ptr parse_or() { return keyword_chain(expr::kind::or_, "or", &parser::parse_and); }
  expr_ptr parse_and() { return keyword_chain(expr::kind::and_, "and", &parser::parse_not); }
  /// `next (keyword next)*`, folded to the left into nodes of `kind`.
  expr_ptr keyword_chain(expr::kind kind, std::string_view keyword, expr_ptr (parser::*next)()) {
    auto left = (this->*next)();
    while (at_name(keyword)) {
      auto e = make(kind, cur().pos);
      ++i_;
      e->args.push_back(std::move(left));
      e->args.push_back((this->*next)());
      left = std::move(e);
    }
    return left;
  }
  expr_ptr parse_not() {
    if (at_name("not")) {
      auto e = make(expr::kind::not_, cur().pos);
      ++i_;
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  expr_ptr parse_compare() {
    auto first = parse_math1();
    expr_ptr cmp;
    while (true) {
      std::string op;
      if (cur().type == token::kind::op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                            cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        ++i_;
      } else if (at_name("in")) {
        op = "in";
        ++i_;
      } else if (at_name("not") && peek().type == token::kind::name && peek().text == "in") {
        op = "not in";
        i_ += 2;
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(expr::kind::compare, first->pos);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  expr_ptr binary(const std::string& op, expr_ptr l, expr_ptr r, std::size_t pos) {
    auto e = make(expr::kind::binary, pos);
    e->name = op;
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }
  expr_ptr parse_math1() {
    auto left = parse_concat();
    while (at_op("+") || at_op("-")) {
      const auto op = cur().text;
      const auto pos = cur().pos;
      ++i_;
      left = binary(op, std::move(left), parse_concat(), pos);
    }
    return left;
  }
  expr_ptr parse_concat() {
    auto left = parse_math2();
    while (at_op("~")) {
      const auto pos = cur().pos;
      ++i_;
      left = binary("~", std::move(left), parse_math2(), pos);
    }
    return left;
  }
  expr_ptr parse_math2() {
    auto left = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const auto op = cur().text;
      const auto pos = cur().pos;
      ++i_;
      left = binary(op, std::move(left), parse_pow(), pos);
    }
    return left;
  }
  expr_ptr parse_pow() {
    auto left = parse_unary(true);
    while (at_op("**")) {
      const auto pos = cur().pos;
      ++i_;
      left = binary("**", std::move(left), parse_unary(true), pos);
    }
    return left;
  }
  expr_ptr parse_unary(bool with_filter) {
    const auto guard = enter();
    expr_ptr e;
    if (at_op("-") || at_op("+")) {
      e = make(at_op("-") ? expr::kind::neg : expr::kind::pos, cur().pos);
      ++i_;
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }

  expr_ptr parse_primary() {
    const auto& t = cur();
    const auto pos = t.pos;
    switch (t.type) {
      case token::kind::name: {
        ++i_;
        auto e = make(expr::kind::literal, pos);
        if (t.text == "true" || t.text == "True") e->literal = true;
        else if (t.text == "false" || t.text == "False") e->literal = false;
        else if (t.text == "none" || t.text == "None") e->literal = nullptr;
        else e->type = expr::kind::name, e->name = t.text;
        return e;
      }
      case token::kind::string: {
        auto e = make(expr::kind::literal, pos);
        std::string s;
        while (cur().type == token::kind::string) s += t_[i_++].text;  // adjacent literals concatenate
        e->literal = std::move(s);
        return e;
      }
      case token::kind::integer: {
        ++i_;
        auto e = make(expr::kind::literal, pos);
        std::int64_t v = 0;
        const auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (r.ec != std::errc()) lex_.fail(pos, "integer literal out of range");
        e->literal = v;
        return e;
      }
      case token::kind::number: {
        ++i_;
        auto e = make(expr::kind::literal, pos);
        e->literal = std::strtod(t.text.c_str(), nullptr);
        return e;
      }
      case token::kind::op:
        if (t.text == "(") {
          ++i_;
          if (at_op(")")) {
            ++i_;
            return make(expr::kind::tuple, pos);
          }
          auto first = parse_expression();
          if (!at_op(",")) {
            expect_op(")");
            return first;
          }
          auto e = make(expr::kind::tuple, pos);
          e->args.push_back(std::move(first));
          while (at_op(",")) {
            ++i_;
            if (at_op(")")) break;
            e->args.push_back(parse_expression());
          }
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          ++i_;
          auto e = make(expr::kind::list, pos);
          while (!at_op("]")) {
            e->args.push_back(parse_expression());
            if (!at_op("]")) expect_op(",");
          }
          ++i_;
          return e;
        }
        if (t.text == "{") {
          ++i_;
          auto e = make(expr::kind::dict, pos);
          while (!at_op("}")) {
            e->args.push_back(parse_expression());
            expect_op(":");
            e->args.push_back(parse_expression());
            if (!at_op("}")) expect_op(",");
          }
          ++i_;
          return e;
        }
        break;
      case token::kind::text:
      case token::kind::var_begin:
      case token::kind::var_end:
      case token::kind::block_begin:
      case token::kind::block_end:
      case token::kind::eof: break;
    }
    fail("expected an expression, found " + describe(t));
  }

  /// Arguments of a call from after '(' to ')': positional, then name=value.
  void parse_args(expr& call) {
    expect_op("(");
    while (!at_op(")")) {
      if (cur().type == token::kind::name && peek().type == token::kind::op && peek().text == "=") {
        call.keywords.push_back(t_[i_].text);
        i_ += 2;
        call.args.push_back(parse_expression());
      } else {
        if (!call.keywords.empty()) fail("positional argument after a keyword argument");
        call.args.push_back(parse_expression());
      }
      if (!at_op(")")) expect_op(",");
    }
    ++i_;
  }

  expr_ptr parse_postfix(expr_ptr e) {
    while (true) {
      if (at_op(".")) {
        ++i_;
        if (cur().type == token::kind::integer) {  // x.0 is x[0]
          auto a = make(expr::kind::item, cur().pos);
          auto idx = make(expr::kind::literal, cur().pos);
          idx->literal = std::int64_t(std::stoll(t_[i_++].text));
          a->args.push_back(std::move(e));
          a->args.push_back(std::move(idx));
          e = std::move(a);
        } else {
          auto a = make(expr::kind::attr, cur().pos);
          a->name = take_name();
          a->args.push_back(std::move(e));
          e = std::move(a);
        }
      } else if (at_op("[")) {
        const auto pos = cur().pos;
        ++i_;
        expr_ptr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!at_op(":") && !at_op("]")) parts[k] = parse_expression();
          if (k < 2 && at_op(":")) {
            slice = true;
            ++i_;
          } else {
            break;
          }
        }
        expect_op("]");
        auto s = make(slice ? expr::kind::slice : expr::kind::item, pos);
        s->args.push_back(std::move(e));
        if (slice)
          for (auto& p : parts) s->args.push_back(std::move(p));
        else {
          if (!parts[0]) lex_.fail(pos, "empty subscript");
          s->args.push_back(std::move(parts[0]));
        }
        e = std::move(s);
      } else if (at_op("(")) {
        auto c = make(expr::kind::call, cur().pos);
        c->args.push_back(std::move(e));
        parse_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }
  expr_ptr parse_filters(expr_ptr e) {
    while (true) {
      if (at_op("|")) {
        ++i_;
        auto f = make(expr::kind::filter, cur().pos);
        f->name = take_name();
        if (!filter_names().count(f->name)) lex_.fail(f->pos, "filter '" + f->name + "' is not supported");
        f->args.push_back(std::move(e));
        if (at_op("(")) parse_args(*f);
        e = std::move(f);
      } else if (at_name("is")) {
        ++i_;
        auto t = make(expr::kind::test, cur().pos);
        if (at_name("not")) ++i_, t->negated = true;
        if (cur().type == token::kind::op && test_names().count(cur().text)) t->name = t_[i_++].text;
        else t->name = take_name();
        if (!test_names().count(t->name)) lex_.fail(t->pos, "test '" + t->name + "' is not supported");
        t->args.push_back(std::move(e));
        if (at_op("(")) parse_args(*t);
        else if (cur().type == token::kind::string || cur().type == token::kind::integer ||
                 cur().type == token::kind::number ||
                 (cur().type == token::kind::name && !at_name("and") && !at_name("or") && !at_name("else") &&
                  !at_name("if") && !at_name("in") && !at_name("is") && !at_name("not")))
          t->args.push_back(parse_postfix(parse_primary()));  // `is divisibleby 3`, `is sameas none`
        e = std::move(t);
      } else if (at_op("(")) {
        auto c = make(expr::kind::call, cur().pos);
        c->args.push_back(std::move(e));
        parse_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  /// Bounds the recursion of the parser (and so of the renderer): deeper nesting is an error, not a
  /// stack overflow.
  struct nesting {
    int& depth;
    ~nesting() { --depth; }
  };
  nesting enter() {
    if (++depth_ > max_nesting) {
      --depth_;
      fail("nesting deeper than " + std::to_string(max_nesting) + " levels");
    }
    return nesting{depth_};
  }
  static constexpr int max_nesting = 200;

  std::vector<token> t_;
  std::size_t i_ = 0;
  const lexer& lex_;
  int depth_ = 0;
};

}  // namespace nexus::jinja
