#include "snapshotter/filter.h"

#include <cctype>

namespace sealroot::snapshotter {
namespace {

// A cursor over one filter string.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  bool Consume(std::string_view token) {
    if (text_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }

  // "..." with Go escapes (\" \\ \n \t and the rest taken literally).
  Result<std::string> Quoted() {
    ++pos_;  // the opening quote
    std::string out;
    while (!AtEnd()) {
      char c = text_[pos_++];
      if (c == '"') return out;
      if (c == '\\' && !AtEnd()) {
        char e = text_[pos_++];
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          default:
            out += e;
        }
        continue;
      }
      out += c;
    }
    return InvalidArgument("filter " + std::string(text_) + ": unterminated quoted string");
  }

  Result<std::string> FieldName() {
    if (Peek() == '"') return Quoted();
    std::size_t start = pos_;
    while (!AtEnd() && (std::isalnum(static_cast<unsigned char>(Peek())) || Peek() == '_' || Peek() == '-'))
      ++pos_;
    if (pos_ == start) return InvalidArgument("filter " + std::string(text_) + ": expected a field name");
    return std::string(text_.substr(start, pos_ - start));
  }

  Result<std::string> Value() {
    if (Peek() == '"') return Quoted();
    std::size_t start = pos_;
    while (!AtEnd() && Peek() != ',') ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

Result<Filter> Filter::Parse(std::span<const std::string> filters) {
  Filter out;
  for (const std::string& text : filters) {
    if (text.empty()) continue;
    Scanner scan(text);
    std::vector<Selector> selectors;
    do {
      Selector selector;
      do {
        SR_ASSIGN_OR_RETURN(std::string name, scan.FieldName());
        selector.path.push_back(std::move(name));
      } while (scan.Consume("."));
      if (scan.Consume("==")) {
        selector.op = Selector::Op::kEqual;
      } else if (scan.Consume("!=")) {
        selector.op = Selector::Op::kNotEqual;
      } else if (scan.Consume("~=")) {
        selector.op = Selector::Op::kMatches;
      }
      if (selector.op != Selector::Op::kPresent) {
        SR_ASSIGN_OR_RETURN(selector.value, scan.Value());
      }
      if (selector.op == Selector::Op::kMatches) {
        try {
          selector.regex.emplace(selector.value, std::regex::ECMAScript);
        } catch (const std::regex_error&) {
          return InvalidArgument("filter " + text + ": bad regular expression " + selector.value);
        }
      }
      selectors.push_back(std::move(selector));
      if (scan.AtEnd()) break;
      if (!scan.Consume(",")) return InvalidArgument("filter " + text + ": expected ',' between selectors");
    } while (true);
    out.alternatives_.push_back(std::move(selectors));
  }
  return out;
}

bool Filter::Match(const Fields& fields) const {
  if (alternatives_.empty()) return true;
  for (const std::vector<Selector>& selectors : alternatives_) {
    bool all = true;
    for (const Selector& s : selectors) {
      std::optional<std::string> value = fields(s.path);
      switch (s.op) {
        case Selector::Op::kPresent:
          all = value.has_value();
          break;
        case Selector::Op::kEqual:
          all = value && *value == s.value;
          break;
        case Selector::Op::kNotEqual:
          all = value.value_or("") != s.value;
          break;
        case Selector::Op::kMatches:
          all = value && std::regex_search(*value, *s.regex);
          break;
      }
      if (!all) break;
    }
    if (all) return true;
  }
  return false;
}

}  // namespace sealroot::snapshotter
