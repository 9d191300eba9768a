#include "image/src/toml.h"

#include <string>
#include <vector>

namespace sealroot::image::internal {
namespace {

using nlohmann::json;

class Parser {
 public:
  Parser(std::string_view text, std::string_view origin) : s_(text), origin_(origin) {}

  Result<json> Document() {
    json root = json::object();
    json* table = &root;
    while (true) {
      SkipSpaceAndComments(/*newlines=*/true);
      if (AtEnd()) return root;
      if (Peek() == '[') {
        SR_ASSIGN_OR_RETURN(table, Header(root));
      } else {
        SR_RETURN_IF_ERROR(KeyValue(*table));
      }
      SkipSpaceAndComments(/*newlines=*/false);
      if (!AtEnd() && Peek() != '\n' && Peek() != '\r') return Error("expected the end of the line");
    }
  }

 private:
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek(std::size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }
  bool StartsWith(std::string_view what) const { return s_.substr(pos_).starts_with(what); }
  void Advance(std::size_t n = 1) {
    for (std::size_t i = 0; i < n && pos_ < s_.size(); ++i) line_ += s_[pos_++] == '\n';
  }
  Status Error(const std::string& what) const {
    return InvalidArgument(std::string(origin_) + ":" + std::to_string(line_) + ": " + what);
  }

  void SkipSpaceAndComments(bool newlines) {
    while (!AtEnd()) {
      char c = Peek();
      if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        Advance();
      } else if (c == '#') {
        while (!AtEnd() && Peek() != '\n') Advance();
      } else {
        return;
      }
    }
  }

  // [a.b] or [[a.b]]: the table that following key/values go into.
  Result<json*> Header(json& root) {
    bool array = StartsWith("[[");
    Advance(array ? 2 : 1);
    SR_ASSIGN_OR_RETURN(std::vector<std::string> path, Key());
    if (!StartsWith(array ? "]]" : "]")) return Error("unterminated table header");
    Advance(array ? 2 : 1);
    json* at = &root;
    for (std::size_t i = 0; i < path.size(); ++i) {
      bool last = i + 1 == path.size();
      json& next = (*at)[path[i]];
      if (last && array) {
        if (next.is_null()) next = json::array();
        if (!next.is_array()) return Error("'" + path[i] + "' is not an array of tables");
        next.push_back(json::object());
        return &next.back();
      }
      if (next.is_null()) next = json::object();
      if (next.is_array() && !next.empty() && next.back().is_object()) {
        at = &next.back();  // [[a]] then [a.b]: into the last element
      } else if (next.is_object()) {
        at = &next;
      } else {
        return Error("'" + path[i] + "' is not a table");
      }
    }
    return at;
  }

  Result<std::vector<std::string>> Key() {
    std::vector<std::string> parts;
    while (true) {
      SkipSpaceAndComments(false);
      if (Peek() == '"' || Peek() == '\'') {
        SR_ASSIGN_OR_RETURN(json k, String());
        parts.push_back(k.get<std::string>());
      } else {
        std::size_t start = pos_;
        while (!AtEnd() &&
               (std::isalnum(static_cast<unsigned char>(Peek())) || Peek() == '-' || Peek() == '_'))
          Advance();
        if (pos_ == start) return Error("expected a key");
        parts.emplace_back(s_.substr(start, pos_ - start));
      }
      SkipSpaceAndComments(false);
      if (Peek() != '.') return parts;
      Advance();
    }
  }

  Status KeyValue(json& table) {
    SR_ASSIGN_OR_RETURN(std::vector<std::string> path, Key());
    if (Peek() != '=') return Error("expected '=' after the key");
    Advance();
    SkipSpaceAndComments(false);
    SR_ASSIGN_OR_RETURN(json value, Value());
    json* at = &table;
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
      json& next = (*at)[path[i]];
      if (next.is_null()) next = json::object();
      if (!next.is_object()) return Error("'" + path[i] + "' is not a table");
      at = &next;
    }
    if (at->contains(path.back())) return Error("key '" + path.back() + "' defined twice");
    (*at)[path.back()] = std::move(value);
    return OkStatus();
  }

  Result<json> Value() {
    char c = Peek();
    if (c == '"' || c == '\'') return String();
    if (c == '[') return Array();
    if (c == '{') return InlineTable();
    if (StartsWith("true")) {
      Advance(4);
      return json(true);
    }
    if (StartsWith("false")) {
      Advance(5);
      return json(false);
    }
    std::size_t start = pos_;
    while (!AtEnd() && (std::isalnum(static_cast<unsigned char>(Peek())) || Peek() == '+' || Peek() == '-' ||
                        Peek() == '.' || Peek() == '_'))
      Advance();
    std::string number(s_.substr(start, pos_ - start));
    std::erase(number, '_');
    if (number.empty()) return Error("expected a value");
    try {
      std::size_t used = 0;
      if (number.find_first_of(".eE") == std::string::npos) {
        long long v = std::stoll(number, &used, 0);
        if (used == number.size()) return json(v);
      } else {
        double v = std::stod(number, &used);
        if (used == number.size()) return json(v);
      }
    } catch (const std::exception&) {
    }
    return Error("unsupported value '" + number + "'");
  }

  Result<json> String() {
    char quote = Peek();
    bool multi = StartsWith(std::string(3, quote));
    Advance(multi ? 3 : 1);
    if (multi && (Peek() == '\n' || (Peek() == '\r' && Peek(1) == '\n'))) Advance(Peek() == '\r' ? 2 : 1);
    std::string out;
    while (true) {
      if (AtEnd()) return Error("unterminated string");
      char c = Peek();
      if (multi ? StartsWith(std::string(3, quote)) : c == quote) {
        Advance(multi ? 3 : 1);
        return json(out);
      }
      if (!multi && c == '\n') return Error("newline in a string");
      if (c == '\\' && quote == '"') {
        Advance();
        char e = Peek();
        Advance();
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
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case '/':
            out += '/';
            break;
          case 'u': {
            std::string hex(s_.substr(pos_, 4));
            Advance(4);
            unsigned long cp = std::strtoul(hex.c_str(), nullptr, 16);
            if (cp < 0x80) {
              out += static_cast<char>(cp);
            } else if (cp < 0x800) {
              out += static_cast<char>(0xC0 | (cp >> 6));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
              out += static_cast<char>(0xE0 | (cp >> 12));
              out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            }
            break;
          }
          default:
            return Error(std::string("unknown escape \\") + e);
        }
        continue;
      }
      out += c;
      Advance();
    }
  }

  Result<json> Array() {
    Advance();  // [
    json out = json::array();
    while (true) {
      SkipSpaceAndComments(true);
      if (Peek() == ']') {
        Advance();
        return out;
      }
      SR_ASSIGN_OR_RETURN(json v, Value());
      out.push_back(std::move(v));
      SkipSpaceAndComments(true);
      if (Peek() == ',') {
        Advance();
      } else if (Peek() != ']') {
        return Error("expected ',' or ']' in an array");
      }
    }
  }

  Result<json> InlineTable() {
    Advance();  // {
    json out = json::object();
    SkipSpaceAndComments(false);
    if (Peek() == '}') {
      Advance();
      return out;
    }
    while (true) {
      SR_RETURN_IF_ERROR(KeyValue(out));
      SkipSpaceAndComments(false);
      if (Peek() == '}') {
        Advance();
        return out;
      }
      if (Peek() != ',') return Error("expected ',' or '}' in an inline table");
      Advance();
    }
  }

  std::string_view s_;
  std::string_view origin_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

Result<nlohmann::json> ParseToml(std::string_view text, std::string_view origin) {
  return Parser(text, origin).Document();
}

}  // namespace sealroot::image::internal
