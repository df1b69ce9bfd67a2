#include "storage/storage.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/crypto.hpp"

namespace souq::storage {
namespace {

class LocalFolder : public Storage {
 public:
  explicit LocalFolder(std::filesystem::path root) : root_(std::move(root)) {
    std::filesystem::create_directories(root_);
  }

  void put(const std::string& key, std::string_view bytes) override {
    auto path = resolve(key);
    std::filesystem::create_directories(path.parent_path());
    auto temp = path;
    temp += ".part-" + crypto::random_token(6);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) throw std::runtime_error("storage: cannot create " + temp.string());
    size_t done = 0;
    while (done < bytes.size()) {
      auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        ::close(fd);
        std::filesystem::remove(temp);
        throw std::runtime_error("storage: cannot write " + temp.string());
      }
      done += size_t(n);
    }
    ::fsync(fd);
    ::close(fd);
    std::filesystem::rename(temp, path);
  }

  std::optional<std::string> get(const std::string& key) override {
    std::ifstream in(resolve(key), std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

  void remove(const std::string& key) override {
    std::error_code ec;
    std::filesystem::remove(resolve(key), ec);
  }

 private:
  std::filesystem::path resolve(const std::string& key) const {
    if (key.empty() || key.find("..") != std::string::npos || key.front() == '/')
      throw std::invalid_argument("storage: bad key " + key);
    return root_ / key;
  }
  std::filesystem::path root_;
};

bool starts(std::string_view bytes, std::string_view magic) { return bytes.substr(0, magic.size()) == magic; }

}  // namespace

std::unique_ptr<Storage> local_folder(const std::string& root) { return std::make_unique<LocalFolder>(root); }

std::string sniff_type(std::string_view b) {
  if (starts(b, "\xFF\xD8\xFF")) return "image/jpeg";
  if (starts(b, "\x89PNG\r\n\x1A\n")) return "image/png";
  if (starts(b, "GIF87a") || starts(b, "GIF89a")) return "image/gif";
  if (b.size() >= 12 && starts(b, "RIFF") && b.substr(8, 4) == "WEBP") return "image/webp";
  if (starts(b, "%PDF-")) return "application/pdf";
  return "";
}

}  // namespace souq::storage
