#include "envs/image_io.h"

#include <png.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace skillgrid::envs {
namespace {

[[noreturn]] void Throw(const std::string& path, const std::string& what) {
  throw std::runtime_error("'" + path + "': " + what);
}

std::string ErrnoText() { return std::strerror(errno); }

/// Renames `tmp` onto `path`, removing `tmp` and throwing on failure.
void Commit(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = ErrnoText();
    std::remove(tmp.c_str());
    Throw(path, "cannot rename the temporary file into place: " + err);
  }
}

inline uint32_t Pack(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 16) | (static_cast<uint32_t>(p[1]) << 8) | p[2];
}

// ---------------------------------------------------------------------------------------------
// LZW (GIF flavour: LSB-first codes, variable width 3..12 bits, clear and end-of-information).

class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>* out) : out_(out) {}
  void Put(uint32_t code, int bits) {
    acc_ |= static_cast<uint64_t>(code) << nbits_;
    nbits_ += bits;
    while (nbits_ >= 8) {
      out_->push_back(static_cast<uint8_t>(acc_ & 0xff));
      acc_ >>= 8;
      nbits_ -= 8;
    }
  }
  void Flush() {
    if (nbits_ > 0) out_->push_back(static_cast<uint8_t>(acc_ & 0xff));
    acc_ = 0;
    nbits_ = 0;
  }

 private:
  std::vector<uint8_t>* out_;
  uint64_t acc_ = 0;
  int nbits_ = 0;
};

constexpr int kMaxCodes = 4096;
constexpr int kHashSize = 8192;  // power of two, > kMaxCodes

/// Compresses `n` palette indices (each < 2^min_code_size) into the raw LZW code stream.
void LzwEncode(const uint8_t* idx, size_t n, int min_code_size, std::vector<uint8_t>* out) {
  out->clear();
  BitWriter bw(out);
  const int clear = 1 << min_code_size;
  const int eoi = clear + 1;
  int bits = min_code_size + 1;
  int next = clear + 2;
  // Open addressing: key = prefix << 8 | byte (< 2^20), value = code.
  std::array<int32_t, kHashSize> keys;
  std::array<uint16_t, kHashSize> vals;
  keys.fill(-1);
  bw.Put(clear, bits);
  if (n == 0) {
    bw.Put(eoi, bits);
    bw.Flush();
    return;
  }
  int prefix = idx[0];
  for (size_t i = 1; i < n; ++i) {
    const int k = idx[i];
    const int32_t key = (prefix << 8) | k;
    uint32_t h = (static_cast<uint32_t>(key) * 2654435761u) >> 19;  // 13 bits
    bool found = false;
    while (keys[h] != -1) {
      if (keys[h] == key) {
        found = true;
        break;
      }
      h = (h + 1) & (kHashSize - 1);
    }
    if (found) {
      prefix = vals[h];
      continue;
    }
    bw.Put(prefix, bits);
    if (next < kMaxCodes) {
      keys[h] = key;
      vals[h] = static_cast<uint16_t>(next);
      // The decoder lags one entry behind: widen once the entry just added needs more bits.
      if (next == (1 << bits) && bits < 12) ++bits;
      ++next;
    } else {
      // Table full: restart it.
      bw.Put(clear, bits);
      keys.fill(-1);
      bits = min_code_size + 1;
      next = clear + 2;
    }
    prefix = k;
  }
  bw.Put(prefix, bits);
  // The decoder adds one more entry on reading the last code; it may widen before the EOI.
  if (next < kMaxCodes && next == (1 << bits) && bits < 12) ++bits;
  bw.Put(eoi, bits);
  bw.Flush();
}

/// Decodes an LZW code stream into at most `max_out` indices. Returns false if it is corrupt.
bool LzwDecode(const std::vector<uint8_t>& data, int min_code_size, size_t max_out,
               std::vector<uint8_t>* out) {
  out->clear();
  if (min_code_size < 2 || min_code_size > 11) return false;
  const int clear = 1 << min_code_size;
  const int eoi = clear + 1;
  int bits = min_code_size + 1;
  int avail = clear + 2;
  int old = -1;
  std::vector<uint16_t> prefix(kMaxCodes);
  std::vector<uint8_t> suffix(kMaxCodes), first(kMaxCodes);
  std::vector<uint16_t> length(kMaxCodes);
  for (int c = 0; c < clear; ++c) {
    suffix[c] = first[c] = static_cast<uint8_t>(c);
    length[c] = 1;
    prefix[c] = 0;
  }
  std::vector<uint8_t> stack(kMaxCodes + 1);
  uint64_t acc = 0;
  int nbits = 0;
  size_t pos = 0;
  auto emit = [&](int code) {
    int len = length[code];
    int c = code;
    for (int i = len - 1; i >= 0; --i) {
      stack[i] = suffix[c];
      c = prefix[c];
    }
    for (int i = 0; i < len && out->size() < max_out; ++i) out->push_back(stack[i]);
  };
  while (true) {
    while (nbits < bits && pos < data.size()) {
      acc |= static_cast<uint64_t>(data[pos++]) << nbits;
      nbits += 8;
    }
    if (nbits < bits) break;  // ran out of data without an EOI: tolerated
    const int code = static_cast<int>(acc & ((1u << bits) - 1));
    acc >>= bits;
    nbits -= bits;
    if (code == clear) {
      bits = min_code_size + 1;
      avail = clear + 2;
      old = -1;
      continue;
    }
    if (code == eoi) break;
    if (old == -1) {
      if (code >= clear) return false;
      emit(code);
      old = code;
      continue;
    }
    uint8_t head;
    if (code < avail) {
      head = first[code];
    } else if (code == avail && avail < kMaxCodes) {
      head = first[old];
    } else {
      return false;
    }
    if (avail < kMaxCodes) {
      prefix[avail] = static_cast<uint16_t>(old);
      suffix[avail] = head;
      first[avail] = first[old];
      length[avail] = static_cast<uint16_t>(length[old] + 1);
      ++avail;
      if (avail == (1 << bits) && bits < 12) ++bits;
    }
    emit(code);
    old = code;
    if (out->size() >= max_out) break;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Palettes.

/// Smallest n with 2^n >= count, at least 1 (a GIF colour table has 2^n entries).
int TableBits(size_t count) {
  int b = 1;
  while ((size_t{1} << b) < count) ++b;
  return b;
}

/// Counts the distinct colours of a rectangle of `img` (runs counted at once).
void CountColors(const RgbImage& img, int x0, int y0, int w, int h,
                 std::unordered_map<uint32_t, uint32_t>* counts) {
  counts->clear();
  for (int y = y0; y < y0 + h; ++y) {
    const uint8_t* p = img.at(x0, y);
    uint32_t run_color = Pack(p);
    uint32_t run = 0;
    for (int x = 0; x < w; ++x, p += 3) {
      const uint32_t c = Pack(p);
      if (c != run_color) {
        (*counts)[run_color] += run;
        run_color = c;
        run = 0;
      }
      ++run;
    }
    (*counts)[run_color] += run;
  }
}

inline int Channel(uint32_t c, int ch) { return (c >> (16 - 8 * ch)) & 0xff; }

/// Median cut: splits the colours (weighted by pixel count) into at most 256 boxes, each time
/// halving the box with the widest channel range at its weighted median. A box's entry is its
/// dominant colour when that holds at least half its pixels (flat areas stay exact), else the
/// weighted mean.
std::vector<uint32_t> MedianCut(const std::unordered_map<uint32_t, uint32_t>& counts) {
  struct Entry {
    uint32_t color;
    uint32_t count;
  };
  struct Box {
    size_t begin, end;
    int axis, range;
  };
  std::vector<Entry> e;
  e.reserve(counts.size());
  for (const auto& kv : counts) e.push_back({kv.first, kv.second});
  std::sort(e.begin(), e.end(), [](const Entry& x, const Entry& y) { return x.color < y.color; });
  auto make_box = [&](size_t begin, size_t end) {
    Box box{begin, end, 0, -1};
    for (int ch = 0; ch < 3; ++ch) {
      int lo = 255, hi = 0;
      for (size_t i = begin; i < end; ++i) {
        lo = std::min(lo, Channel(e[i].color, ch));
        hi = std::max(hi, Channel(e[i].color, ch));
      }
      if (hi - lo > box.range) {
        box.range = hi - lo;
        box.axis = ch;
      }
    }
    return box;
  };
  std::vector<Box> boxes = {make_box(0, e.size())};
  while (boxes.size() < 256) {
    size_t pick = boxes.size();
    for (size_t i = 0; i < boxes.size(); ++i) {
      if (boxes[i].end - boxes[i].begin < 2 || boxes[i].range <= 0) continue;
      if (pick == boxes.size() || boxes[i].range > boxes[pick].range) pick = i;
    }
    if (pick == boxes.size()) break;
    const Box box = boxes[pick];
    std::sort(e.begin() + box.begin, e.begin() + box.end, [&](const Entry& x, const Entry& y) {
      return Channel(x.color, box.axis) < Channel(y.color, box.axis);
    });
    uint64_t total = 0;
    for (size_t i = box.begin; i < box.end; ++i) total += e[i].count;
    uint64_t acc = 0;
    size_t mid = box.begin + 1;
    for (size_t i = box.begin; i + 1 < box.end; ++i) {
      acc += e[i].count;
      mid = i + 1;
      if (2 * acc >= total) break;
    }
    boxes[pick] = make_box(box.begin, mid);
    boxes.push_back(make_box(mid, box.end));
  }
  std::vector<uint32_t> entries;
  for (const Box& box : boxes) {
    uint64_t total = 0, sum[3] = {0, 0, 0};
    const Entry* dominant = &e[box.begin];
    for (size_t i = box.begin; i < box.end; ++i) {
      total += e[i].count;
      for (int ch = 0; ch < 3; ++ch) sum[ch] += uint64_t{e[i].count} * Channel(e[i].color, ch);
      if (e[i].count > dominant->count) dominant = &e[i];
    }
    if (2 * uint64_t{dominant->count} >= total) {
      entries.push_back(dominant->color);
    } else {
      uint32_t c = 0;
      for (int ch = 0; ch < 3; ++ch)
        c = (c << 8) | static_cast<uint32_t>((sum[ch] + total / 2) / total);
      entries.push_back(c);
    }
  }
  return entries;
}

/// Builds a palette for the colours in `counts`: exactly those colours if there are at most 256,
/// else a median-cut palette, every colour mapped to its nearest entry.
void BuildPalette(const std::unordered_map<uint32_t, uint32_t>& counts,
                  std::vector<uint8_t>* palette, std::unordered_map<uint32_t, uint8_t>* index) {
  palette->clear();
  index->clear();
  if (counts.size() <= 256) {
    std::vector<uint32_t> colors;
    colors.reserve(counts.size());
    for (const auto& kv : counts) colors.push_back(kv.first);
    std::sort(colors.begin(), colors.end());
    for (size_t i = 0; i < colors.size(); ++i) {
      palette->push_back(static_cast<uint8_t>(colors[i] >> 16));
      palette->push_back(static_cast<uint8_t>(colors[i] >> 8));
      palette->push_back(static_cast<uint8_t>(colors[i]));
      (*index)[colors[i]] = static_cast<uint8_t>(i);
    }
    return;
  }
  const std::vector<uint32_t> entries = MedianCut(counts);
  for (uint32_t c : entries) {
    palette->push_back(static_cast<uint8_t>(c >> 16));
    palette->push_back(static_cast<uint8_t>(c >> 8));
    palette->push_back(static_cast<uint8_t>(c));
  }
  for (const auto& kv : counts) {
    const int r = kv.first >> 16, g = (kv.first >> 8) & 0xff, b = kv.first & 0xff;
    int best = 0;
    int best_d = 1 << 30;
    for (size_t i = 0; i < entries.size(); ++i) {
      const int dr = r - (*palette)[i * 3], dg = g - (*palette)[i * 3 + 1],
                db = b - (*palette)[i * 3 + 2];
      const int d = 2 * dr * dr + 4 * dg * dg + 3 * db * db;  // rough perceptual weights
      if (d < best_d) {
        best_d = d;
        best = static_cast<int>(i);
        if (d == 0) break;
      }
    }
    (*index)[kv.first] = static_cast<uint8_t>(best);
  }
}

void Put16(std::vector<uint8_t>* v, int x) {
  v->push_back(static_cast<uint8_t>(x & 0xff));
  v->push_back(static_cast<uint8_t>((x >> 8) & 0xff));
}

/// Appends a colour table padded with black to 2^bits entries.
void PutTable(std::vector<uint8_t>* v, const std::vector<uint8_t>& palette, int bits) {
  v->insert(v->end(), palette.begin(), palette.end());
  v->resize(v->size() + ((size_t{1} << bits) * 3 - palette.size()), 0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PNG.

void WritePng(const std::string& path, const RgbImage& image) {
  if (image.empty() || image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    Throw(path, "cannot write an empty or inconsistent image as PNG");
  }
  const std::string tmp = path + ".tmp";
  std::FILE* fp = std::fopen(tmp.c_str(), "wb");
  if (fp == nullptr) Throw(path, "cannot open '" + tmp + "' for writing: " + ErrnoText());
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = PNG_FORMAT_RGB;
  const int ok =
      png_image_write_to_stdio(&png, fp, 0, image.pixels.data(), image.width * 3, nullptr);
  std::string err = ok ? "" : std::string("libpng: ") + png.message;
  png_image_free(&png);
  if (ok && (std::fflush(fp) != 0 || std::ferror(fp))) err = "write failed: " + ErrnoText();
  if (std::fclose(fp) != 0 && err.empty()) err = "write failed: " + ErrnoText();
  if (!err.empty()) {
    std::remove(tmp.c_str());
    Throw(path, "cannot write PNG: " + err);
  }
  Commit(tmp, path);
}

RgbImage ReadPng(const std::string& path) {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (fp == nullptr) Throw(path, "cannot open PNG: " + ErrnoText());
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  RgbImage out;
  std::string err;
  if (!png_image_begin_read_from_stdio(&png, fp)) {
    err = png.message;
  } else {
    png.format = PNG_FORMAT_RGB;
    out.Resize(static_cast<int>(png.width), static_cast<int>(png.height));
    png_color black{0, 0, 0};
    if (!png_image_finish_read(&png, &black, out.pixels.data(), static_cast<int>(png.width) * 3,
                               nullptr)) {
      err = png.message;
    }
  }
  png_image_free(&png);
  std::fclose(fp);
  if (!err.empty()) Throw(path, "corrupt or unsupported PNG: libpng: " + err);
  return out;
}

// ---------------------------------------------------------------------------------------------
// GIF writer.

GifWriter::GifWriter(const std::string& path, int loop_count)
    : path_(path), tmp_path_(path + ".tmp"), loop_count_(loop_count) {
  if (loop_count < 0 || loop_count > 65535) Throw(path, "GIF loop count must be in 0..65535");
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) {
    Throw(path, "cannot open '" + tmp_path_ + "' for writing: " + ErrnoText());
  }
}

GifWriter::~GifWriter() {
  if (file_ == nullptr) return;
  try {
    Close();
  } catch (...) {
    // A destructor must not throw; Close has already removed the temporary file.
  }
}

void GifWriter::Fail(const std::string& what) {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
    std::remove(tmp_path_.c_str());
  }
  Throw(path_, what);
}

void GifWriter::AddFrame(const RgbImage& frame, int delay_cs) {
  if (file_ == nullptr) Throw(path_, "GIF writer is closed");
  if (frame.empty() || frame.width > 65535 || frame.height > 65535 ||
      frame.pixels.size() != static_cast<size_t>(frame.width) * frame.height * 3) {
    Fail("GIF frame has an invalid size");
  }
  if (frame_count_ > 0 && (frame.width != width_ || frame.height != height_)) {
    Fail("GIF frame " + std::to_string(frame_count_) + " is " + std::to_string(frame.width) + "x" +
         std::to_string(frame.height) + ", the first was " + std::to_string(width_) + "x" +
         std::to_string(height_));
  }
  delay_cs = std::clamp(delay_cs, 0, 65535);
  std::vector<uint8_t> bytes;

  // The rectangle that changed since the previous frame (everything for the first frame).
  int x0 = 0, y0 = 0, x1 = frame.width - 1, y1 = frame.height - 1;
  if (frame_count_ > 0) {
    const size_t row_bytes = static_cast<size_t>(width_) * 3;
    y0 = -1;
    for (int y = 0; y < height_; ++y) {
      if (std::memcmp(frame.at(0, y), previous_.at(0, y), row_bytes) != 0) {
        if (y0 < 0) y0 = y;
        y1 = y;
      }
    }
    if (y0 < 0) {
      x0 = y0 = x1 = y1 = 0;  // unchanged: a 1x1 frame keeps the delay
    } else {
      x0 = width_;
      x1 = -1;
      for (int y = y0; y <= y1; ++y) {
        const uint8_t* a = frame.at(0, y);
        const uint8_t* b = previous_.at(0, y);
        for (int x = 0; x < x0; ++x) {
          if (std::memcmp(a + x * 3, b + x * 3, 3) != 0) {
            x0 = x;
            break;
          }
        }
        for (int x = width_ - 1; x > x1; --x) {
          if (std::memcmp(a + x * 3, b + x * 3, 3) != 0) {
            x1 = x;
            break;
          }
        }
      }
    }
  }
  const int w = x1 - x0 + 1, h = y1 - y0 + 1;

  std::unordered_map<uint32_t, uint32_t> counts;
  CountColors(frame, x0, y0, w, h, &counts);
  std::vector<uint8_t> local_palette;
  std::unordered_map<uint32_t, uint8_t> local_index;
  const std::unordered_map<uint32_t, uint8_t>* index = &global_index_;
  int local_bits = 0;

  if (frame_count_ == 0) {
    width_ = frame.width;
    height_ = frame.height;
    BuildPalette(counts, &global_palette_, &global_index_);
    const int gbits = TableBits(global_palette_.size() / 3);
    bytes.insert(bytes.end(), {'G', 'I', 'F', '8', '9', 'a'});
    Put16(&bytes, width_);
    Put16(&bytes, height_);
    bytes.push_back(static_cast<uint8_t>(0x80 | (7 << 4) | (gbits - 1)));
    bytes.push_back(0);  // background colour index
    bytes.push_back(0);  // pixel aspect ratio
    PutTable(&bytes, global_palette_, gbits);
    // NETSCAPE2.0 looping extension.
    bytes.insert(bytes.end(), {0x21, 0xFF, 0x0B, 'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.',
                               '0', 0x03, 0x01});
    Put16(&bytes, loop_count_);
    bytes.push_back(0);
    previous_.Resize(width_, height_);
  } else {
    bool all_global = true;
    for (const auto& kv : counts) {
      if (global_index_.find(kv.first) == global_index_.end()) {
        all_global = false;
        break;
      }
    }
    if (!all_global) {
      BuildPalette(counts, &local_palette, &local_index);
      local_bits = TableBits(local_palette.size() / 3);
      index = &local_index;
    }
  }

  // Graphic control extension: disposal 1 (leave in place), no transparency.
  bytes.insert(bytes.end(), {0x21, 0xF9, 0x04, 0x04});
  Put16(&bytes, delay_cs);
  bytes.push_back(0);
  bytes.push_back(0);
  // Image descriptor.
  bytes.push_back(0x2C);
  Put16(&bytes, x0);
  Put16(&bytes, y0);
  Put16(&bytes, w);
  Put16(&bytes, h);
  bytes.push_back(local_bits > 0 ? static_cast<uint8_t>(0x80 | (local_bits - 1)) : 0);
  if (local_bits > 0) PutTable(&bytes, local_palette, local_bits);

  // Palette indices, mapping runs of one colour at once.
  indices_.resize(static_cast<size_t>(w) * h);
  uint8_t* dst = indices_.data();
  uint32_t last_color = 0xffffffff;
  uint8_t last_index = 0;
  for (int y = y0; y <= y1; ++y) {
    const uint8_t* p = frame.at(x0, y);
    for (int x = 0; x < w; ++x, p += 3) {
      const uint32_t c = Pack(p);
      if (c != last_color) {
        last_color = c;
        last_index = index->at(c);
      }
      *dst++ = last_index;
    }
  }
  const int table_bits = local_bits > 0 ? local_bits : TableBits(global_palette_.size() / 3);
  const int min_code_size = std::max(2, table_bits);
  LzwEncode(indices_.data(), indices_.size(), min_code_size, &encoded_);
  bytes.push_back(static_cast<uint8_t>(min_code_size));
  for (size_t i = 0; i < encoded_.size(); i += 255) {
    const size_t n = std::min<size_t>(255, encoded_.size() - i);
    bytes.push_back(static_cast<uint8_t>(n));
    bytes.insert(bytes.end(), encoded_.begin() + i, encoded_.begin() + i + n);
  }
  bytes.push_back(0);

  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    Fail("cannot write GIF: " + ErrnoText());
  }
  std::copy(frame.pixels.begin(), frame.pixels.end(), previous_.pixels.begin());
  ++frame_count_;
}

void GifWriter::Close() {
  if (file_ == nullptr) return;
  if (frame_count_ == 0) Fail("cannot write a GIF without frames");
  const uint8_t trailer = 0x3B;
  if (std::fwrite(&trailer, 1, 1, file_) != 1 || std::fflush(file_) != 0 || std::ferror(file_)) {
    Fail("cannot write GIF: " + ErrnoText());
  }
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) {
    std::string err = ErrnoText();
    std::remove(tmp_path_.c_str());
    Throw(path_, "cannot write GIF: " + err);
  }
  Commit(tmp_path_, path_);
}

// ---------------------------------------------------------------------------------------------
// GIF reader.

GifAnimation ReadGif(const std::string& path) {
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (fp == nullptr) Throw(path, "cannot open GIF: " + ErrnoText());
  std::vector<uint8_t> data;
  {
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), fp)) > 0) data.insert(data.end(), buf, buf + n);
    const bool bad = std::ferror(fp) != 0;
    std::fclose(fp);
    if (bad) Throw(path, "cannot read GIF: " + ErrnoText());
  }
  size_t pos = 0;
  auto need = [&](size_t n) {
    if (pos + n > data.size()) Throw(path, "corrupt GIF: unexpected end of file");
  };
  auto u8 = [&]() {
    need(1);
    return data[pos++];
  };
  auto u16 = [&]() {
    need(2);
    const int v = data[pos] | (data[pos + 1] << 8);
    pos += 2;
    return v;
  };
  auto read_table = [&](int bits) {
    const size_t n = (size_t{1} << bits) * 3;
    need(n);
    std::vector<uint8_t> t(data.begin() + pos, data.begin() + pos + n);
    pos += n;
    return t;
  };
  auto read_sub_blocks = [&](std::vector<uint8_t>* out) {
    while (true) {
      const size_t n = u8();
      if (n == 0) break;
      need(n);
      if (out != nullptr) out->insert(out->end(), data.begin() + pos, data.begin() + pos + n);
      pos += n;
    }
  };

  need(13);
  if (std::memcmp(data.data(), "GIF87a", 6) != 0 && std::memcmp(data.data(), "GIF89a", 6) != 0) {
    Throw(path, "corrupt GIF: bad signature");
  }
  pos = 6;
  GifAnimation anim;
  anim.width = u16();
  anim.height = u16();
  if (anim.width <= 0 || anim.height <= 0) Throw(path, "corrupt GIF: empty logical screen");
  const uint8_t flags = u8();
  const int bg_index = u8();
  u8();  // aspect ratio
  std::vector<uint8_t> global_table;
  if (flags & 0x80) global_table = read_table((flags & 7) + 1);
  uint8_t bg[3] = {0, 0, 0};
  if (static_cast<size_t>(bg_index) * 3 + 2 < global_table.size()) {
    std::memcpy(bg, &global_table[bg_index * 3], 3);
  }

  RgbImage canvas;
  canvas.Resize(anim.width, anim.height);
  for (size_t i = 0; i < canvas.pixels.size(); i += 3) std::memcpy(&canvas.pixels[i], bg, 3);
  int delay = 0, disposal = 0, transparent = -1;
  std::vector<uint8_t> lzw, indices;
  while (true) {
    const uint8_t block = u8();
    if (block == 0x3B) break;
    if (block == 0x21) {
      const uint8_t label = u8();
      if (label == 0xF9) {
        const size_t n = u8();
        need(n);
        if (n >= 4) {
          const uint8_t f = data[pos];
          disposal = (f >> 2) & 7;
          delay = data[pos + 1] | (data[pos + 2] << 8);
          transparent = (f & 1) ? data[pos + 3] : -1;
        }
        pos += n;
        read_sub_blocks(nullptr);
      } else if (label == 0xFF) {
        std::vector<uint8_t> app;
        read_sub_blocks(&app);
        // Sub-blocks joined: "NETSCAPE2.0", then 1, loop count (little-endian).
        if (app.size() >= 14 && std::memcmp(app.data(), "NETSCAPE2.0", 11) == 0 && app[11] == 1) {
          anim.loop_count = app[12] | (app[13] << 8);
        }
      } else {
        read_sub_blocks(nullptr);
      }
      continue;
    }
    if (block != 0x2C) Throw(path, "corrupt GIF: unknown block type " + std::to_string(block));
    const int left = u16(), top = u16(), w = u16(), h = u16();
    const uint8_t iflags = u8();
    std::vector<uint8_t> local_table;
    if (iflags & 0x80) local_table = read_table((iflags & 7) + 1);
    const std::vector<uint8_t>& table = (iflags & 0x80) ? local_table : global_table;
    if (table.empty()) Throw(path, "corrupt GIF: image without a colour table");
    const int min_code_size = u8();
    lzw.clear();
    read_sub_blocks(&lzw);
    const size_t npix = static_cast<size_t>(w) * h;
    if (!LzwDecode(lzw, min_code_size, npix, &indices)) {
      Throw(path, "corrupt GIF: bad LZW data in frame " + std::to_string(anim.frames.size()));
    }
    indices.resize(npix, 0);  // short data reads as index 0

    const RgbImage before = disposal == 3 ? canvas : RgbImage();
    // Row order: interlaced images store rows in four passes.
    std::vector<int> rows;
    rows.reserve(h);
    if (iflags & 0x40) {
      const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
      for (int p = 0; p < 4; ++p) {
        for (int y = start[p]; y < h; y += step[p]) rows.push_back(y);
      }
    } else {
      for (int y = 0; y < h; ++y) rows.push_back(y);
    }
    for (int r = 0; r < h; ++r) {
      const int y = top + rows[r];
      if (y < 0 || y >= anim.height) continue;
      for (int x = 0; x < w; ++x) {
        const int cx = left + x;
        if (cx >= anim.width) break;
        const int ci = indices[static_cast<size_t>(r) * w + x];
        if (ci == transparent) continue;
        if (static_cast<size_t>(ci) * 3 + 2 >= table.size()) {
          Throw(path, "corrupt GIF: colour index outside the table");
        }
        std::memcpy(canvas.at(cx, y), &table[ci * 3], 3);
      }
    }
    anim.frames.push_back(canvas);
    anim.delays_cs.push_back(delay);
    // Disposal applies before the next frame is drawn.
    if (disposal == 2) {
      for (int y = std::max(0, top); y < std::min(anim.height, top + h); ++y) {
        for (int x = std::max(0, left); x < std::min(anim.width, left + w); ++x) {
          std::memcpy(canvas.at(x, y), bg, 3);
        }
      }
    } else if (disposal == 3) {
      canvas = before;
    }
    delay = 0;
    disposal = 0;
    transparent = -1;
  }
  if (anim.frames.empty()) Throw(path, "corrupt GIF: no frames");
  return anim;
}

}  // namespace skillgrid::envs
