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

}  // namespace

void Catalog::register_jobs() {
  queue_.handle("catalog.image", [this](const jobs::Job& job) { render_image(job.payload.at("image_id")); });
}

json Catalog::add_image(const identity::Principal& who, const std::string& product_id, const std::string& content_type,
                        const std::string& bytes, const std::string& request_id) {
  std::string sniffed = storage::sniff_type(bytes);
  if (sniffed != "image/jpeg" && sniffed != "image/png" && sniffed != "image/webp" && sniffed != "image/gif")
    throw ApiError(415, "unsupported_image", "Upload a JPEG, PNG, WebP or GIF image.", {{"content_type", content_type}});
  std::string image_id = new_id("img");
  // The file first: a row never names bytes that are not stored.
  db_.read([&](db::Tx& tx) { owned_product(tx, who, product_id); });
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
  db_.write([&](db::Tx& tx) {
    if (tx.exec("UPDATE product_images SET status = $2, sizes = $3, width = $4, height = $5, failure = $6"
                " WHERE id = $1 AND status = 'processing'",
                {image_id, failure.empty() ? "ready" : "failed", dump_json(sizes),
                 failure.empty() ? db::Value(int64_t(r.width)) : db::Value(nullptr),
                 failure.empty() ? db::Value(int64_t(r.height)) : db::Value(nullptr),
                 failure.empty() ? db::Value(nullptr) : db::Value(failure)}) == 0)
      return;
    changed(tx, product_id, "product.updated", "");
  });
  if (!failure.empty()) log::warn("product image unreadable", {{"image_id", image_id}, {"error", failure}});
}

json Catalog::delete_image(const identity::Principal& who, const std::string& product_id, const std::string& image_id,
                           const std::string& request_id) {
  return db_.write([&](db::Tx& tx) {
    owned_product(tx, who, product_id);
    if (tx.exec("UPDATE product_images SET deleted_at = $3 WHERE id = $1 AND product_id = $2 AND deleted_at IS NULL",
                {image_id, product_id, now_text()}) == 0)
      throw ApiError::not_found("No such image.");
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
