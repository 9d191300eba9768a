#include "rpc/handler.h"

namespace sealroot::rpc {

Result<std::pair<std::string, std::string>> SplitMethodPath(std::string_view path) {
  if (!path.starts_with('/')) return InvalidArgument("bad method path");
  path.remove_prefix(1);
  std::size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size()) {
    return InvalidArgument("bad method path");
  }
  return std::make_pair(std::string(path.substr(0, slash)), std::string(path.substr(slash + 1)));
}

}  // namespace sealroot::rpc
