// Where uploaded files live (ARCHITECTURE.md "The outside world"): behind a
// small interface, so a node keeps them in a local folder by default and an
// operator can put them elsewhere. Keys are relative paths made by Souq
// ("chat/conv_…/att_…"), never by clients.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace souq::storage {

class Storage {
 public:
  virtual ~Storage() = default;
  // Stores the bytes under `key` (replacing any), durably before returning.
  virtual void put(const std::string& key, std::string_view bytes) = 0;
  virtual std::optional<std::string> get(const std::string& key) = 0;
  virtual void remove(const std::string& key) = 0;
};

// Files under `root` (created if missing), written to a temporary name,
// flushed, then renamed into place.
std::unique_ptr<Storage> local_folder(const std::string& root);

// What the first bytes of a file say it is: image/jpeg, image/png,
// image/gif, image/webp, application/pdf, or "" when none of those.
std::string sniff_type(std::string_view bytes);

}  // namespace souq::storage
