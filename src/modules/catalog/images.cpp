// Product images: the seller uploads an original; a job makes WebP
// renditions in a few widths with libvips (metadata stripped: no camera GPS
// leaks), stored through the storage interface; URLs are built from the
// media base (a CDN in front of /media, or Souq itself).
#include <vips/vips.h>

#include <algorithm>
#include <mutex>

#include "core/id.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "modules/catalog/module.hpp"

namespace souq::catalog {
namespace {

void init_vips() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("souq") != 0) throw std::runtime_error("libvips failed to start");
    vips_concurrency_set(1);  // one job, one core: the workers run several
    vips_cache_set_max(0);
  });
}

std::string vips_failure() {
  std::string text = vips_error_buffer();
  vips_error_clear();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? "libvips failed" : text;
}

// A 9000 × 7000 photograph; anything larger would not fit the upload limit
// as a sensible JPEG anyway.
constexpr int64_t kMaxPixels = 64'000'000;

struct Rendition {
  int width = 0;
  std::string bytes;
};

struct Rendered {
  int width = 0, height = 0;
  std::vector<Rendition> renditions;
};

// The original's size and a WebP per width no wider than it (at least one).
Rendered render(const std::string& original, std::vector<int> widths) {
  init_vips();
  Rendered out;
  VipsImage* probe = vips_image_new_from_buffer(original.data(), original.size(), "", nullptr);
  if (!probe) throw std::invalid_argument(vips_failure());
  out.width = vips_image_get_width(probe);
  out.height = vips_image_get_height(probe);
  g_object_unref(probe);
  // A few kilobytes of PNG can declare a billion pixels (an interlaced one is
  // decoded whole, in memory): such an upload fails here, from its header.
  if (int64_t(out.width) * out.height > kMaxPixels)
    throw std::invalid_argument("the image is " + std::to_string(out.width) + "x" + std::to_string(out.height) +
                                " pixels; at most " + std::to_string(kMaxPixels / 1'000'000) +
                                " megapixels are rendered");
  std::sort(widths.rbegin(), widths.rend());
  std::vector<int> chosen;
  for (int w : widths)
    if (w <= out.width) chosen.push_back(w);
  if (chosen.empty()) chosen.push_back(out.width);
  for (int w : chosen) {
    VipsImage* thumb = nullptr;
    if (vips_thumbnail_buffer(const_cast<char*>(original.data()), original.size(), &thumb, w, "height", 100000,
                              nullptr) != 0)
      throw std::invalid_argument(vips_failure());
    void* buf = nullptr;
    size_t len = 0;
    int rc = vips_webpsave_buffer(thumb, &buf, &len, "Q", 80, "strip", TRUE, nullptr);
    g_object_unref(thumb);
    if (rc != 0) throw std::runtime_error(vips_failure());
    out.renditions.push_back({w, std::string(static_cast<char*>(buf), len)});
    g_free(buf);
  }
  return out;
}

std::string image_key(const std::string& product_id, const std::string& image_id, const std::string& name) {
  return "products/" + product_id + "/" + image_id + "/" + name;
}

// The original and the renditions of one image (best effort: a file left
// behind is unreachable once its row is deleted, never the other way round).
void remove_files(storage::Storage& files, const std::string& product_id, const std::string& image_id,
                  const json& sizes) {
  std::vector<std::string> names{"original"};
  for (const auto& w : sizes) names.push_back(std::to_string(w.get<int>()) + ".webp");
  for (const auto& name : names) {
    try {
      files.remove(image_key(product_id, image_id, name));
    } catch (const std::exception& e) {
      log::warn("product image file not removed", {{"image_id", image_id}, {"file", name}, {"error", e.what()}});
    }
  }
}

}  // namespace

json Catalog::add_image(const identity::Principal& who, const std::string& product_id, const std::string& content_type,
                        const std::string& bytes, const std::string& request_id) {
  // Whose product first (a read cannot lock it; the write below checks again).
  db_.read([&](db::Tx& tx) { owned_product(tx, who, product_id, false); });
  std::string sniffed = storage::sniff_type(bytes);
  if (sniffed != "image/jpeg" && sniffed != "image/png" && sniffed != "image/webp" && sniffed != "image/gif")
    throw ApiError(415, "unsupported_image", "Upload a JPEG, PNG, WebP or GIF image.", {{"content_type", content_type}});
  std::string image_id = new_id("img");
  // The file first: a row never names bytes that are not stored.
  files_.put(image_key(product_id, image_id, "original"), bytes);
  try {
    return db_.write([&](db::Tx& tx) {
      owned_product(tx, who, product_id);
      auto count = tx.query_one("SELECT COUNT(*) AS n, COALESCE(MAX(position), -1) AS p FROM product_images"
                                " WHERE product_id = $1 AND deleted_at IS NULL",
                                {product_id});
      if (count->integer("n") >= options_.max_images)
        throw ApiError::unprocessable("too_many_images", "A product has at most " + std::to_string(options_.max_images) +
                                                             " images.");
      tx.exec("INSERT INTO product_images (id, product_id, position, content_type, bytes, status, created_at)"
              " VALUES ($1, $2, $3, $4, $5, 'processing', $6)",
              {image_id, product_id, count->integer("p") + 1, sniffed, int64_t(bytes.size()), now_text()});
      queue_.enqueue(tx, "catalog.image", {{"image_id", image_id}});
      tx.after_commit([this] { queue_.notify(); });
      changed(tx, product_id, "product.updated", request_id);
      return json{{"id", image_id}, {"product_id", product_id}, {"status", "processing"}, {"content_type", sniffed},
                  {"bytes", int64_t(bytes.size())}};
    });
  } catch (...) {
    files_.remove(image_key(product_id, image_id, "original"));
    throw;
  }
}

void Catalog::render_image(const std::string& image_id) {
  auto row = db_.read([&](db::Tx& tx) {
    return tx.query_one("SELECT product_id, status FROM product_images WHERE id = $1 AND deleted_at IS NULL", {image_id});
  });
  if (!row || row->text("status") != "processing") return;
  std::string product_id = row->text("product_id");
  auto original = files_.get(image_key(product_id, image_id, "original"));
  if (!original) throw std::runtime_error("image " + image_id + ": the original is missing from storage");
  Rendered r;
  std::string failure;
  try {
    r = render(*original, options_.image_widths);
  } catch (const std::invalid_argument& e) {
    failure = e.what();  // not an image libvips reads: retrying will not help
  }
  json sizes = json::array();
  for (const auto& rendition : r.renditions) {
    files_.put(image_key(product_id, image_id, std::to_string(rendition.width) + ".webp"), rendition.bytes);
    sizes.push_back(rendition.width);
  }
  bool deleted = db_.write([&](db::Tx& tx) {
    if (tx.exec("UPDATE product_images SET status = $2, sizes = $3, width = $4, height = $5, failure = $6"
                " WHERE id = $1 AND status = 'processing' AND deleted_at IS NULL",
                {image_id, failure.empty() ? "ready" : "failed", dump_json(sizes),
                 failure.empty() ? db::Value(int64_t(r.width)) : db::Value(nullptr),
                 failure.empty() ? db::Value(int64_t(r.height)) : db::Value(nullptr),
                 failure.empty() ? db::Value(nullptr) : db::Value(failure)}) == 0)
      return tx.query_one("SELECT 1 AS x FROM product_images WHERE id = $1 AND deleted_at IS NOT NULL", {image_id})
          .has_value();
    // A new image is content: with moderation, a listed product shows it only
    // once an admin has seen it (from now, when there is something to see).
    if (options_.moderation && failure.empty())
      tx.exec("UPDATE products SET status = 'pending_review' WHERE id = $1 AND status = 'active'", {product_id});
    changed(tx, product_id, "product.updated", "");
    return false;
  });
  // Deleted while it was being rendered: what was just written goes too.
  if (deleted) remove_files(files_, product_id, image_id, sizes);
  if (!failure.empty()) log::warn("product image unreadable", {{"image_id", image_id}, {"error", failure}});
}

json Catalog::delete_image(const identity::Principal& who, const std::string& product_id, const std::string& image_id,
                           const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    owned_product(tx, who, product_id);
    auto image = tx.query_one(
        "SELECT sizes FROM product_images WHERE id = $1 AND product_id = $2 AND deleted_at IS NULL",
        {image_id, product_id});
    if (!image ||
        tx.exec("UPDATE product_images SET deleted_at = $3 WHERE id = $1 AND product_id = $2 AND deleted_at IS NULL",
                {image_id, product_id, now_text()}) == 0)
      throw ApiError::not_found("No such image.");
    // Its URLs stop answering: the files go once the row says so.
    tx.after_commit([this, product_id, image_id, sizes = image->json("sizes")] {
      remove_files(files_, product_id, image_id, sizes);
    });
    changed(tx, product_id, "product.updated", request_id);
    return render_product(tx, *tx.query_one("SELECT p.* FROM products p WHERE p.id = $1", {product_id}), true);
  });
}

std::optional<std::string> Catalog::media(const std::string& key) {
  // Renditions only: originals keep whatever metadata the camera wrote.
  if (key.size() < 6 || key.compare(key.size() - 5, 5, ".webp") != 0 || key.find("..") != std::string::npos)
    return std::nullopt;
  return files_.get(key);
}

}  // namespace souq::catalog
