// RGB images and their files: PNG (libpng) and animated GIF (own LZW codec).
// Writers write to `path + ".tmp"` and rename on success, so a failed write never clobbers an
// existing file. Every error throws std::runtime_error with a one-line message naming the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

namespace skillgrid::envs {

/// An 8-bit RGB image, row-major, 3 bytes per pixel, no row padding.
struct RgbImage {
  int width = 0;                ///< pixels per row
  int height = 0;               ///< rows
  std::vector<uint8_t> pixels;  ///< width * height * 3 bytes

  /// Sets the size; reuses the buffer (no allocation) when it is already large enough.
  /// Pixel contents are unspecified afterwards.
  void Resize(int w, int h) {
    width = w;
    height = h;
    pixels.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  }
  /// Pointer to the pixel at (x, y): its R, G, B bytes.
  uint8_t* at(int x, int y) { return pixels.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* at(int x, int y) const {
    return pixels.data() + (static_cast<size_t>(y) * width + x) * 3;
  }
  /// True if the image has no pixels.
  bool empty() const { return width <= 0 || height <= 0; }
};

/// Writes an RGB PNG. Writes `path + ".tmp"` and renames it onto `path`.
void WritePng(const std::string& path, const RgbImage& image);

/// Reads a PNG of any colour type and bit depth as 8-bit RGB (alpha composited on black).
RgbImage ReadPng(const std::string& path);

/// Streaming animated-GIF writer (GIF89a, looping). Palette per frame: the frame's exact colours
/// when it has at most 256 distinct ones (so such animations round-trip losslessly), otherwise
/// a median-cut palette (dominant colours kept exact), each pixel mapped to the nearest entry.
/// Frames after the first store only the rectangle that changed.
class GifWriter {
 public:
  /// Starts writing `path` (as `path + ".tmp"` until Close). `loop_count` 0 loops forever.
  explicit GifWriter(const std::string& path, int loop_count = 0);
  /// Finishes the file like Close() if it is still open, swallowing errors.
  ~GifWriter();
  GifWriter(const GifWriter&) = delete;
  GifWriter& operator=(const GifWriter&) = delete;

  /// Appends a frame shown for `delay_cs` hundredths of a second. Every frame must have the
  /// size of the first one.
  void AddFrame(const RgbImage& frame, int delay_cs);
  /// Writes the trailer and renames the file into place. Throws if no frame was added.
  void Close();
  /// Frames added so far.
  int frame_count() const { return frame_count_; }

 private:
  void Fail(const std::string& what);

  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
  int loop_count_ = 0;
  int width_ = 0;
  int height_ = 0;
  int frame_count_ = 0;
  RgbImage previous_;                                   // last frame, for the changed rectangle
  std::vector<uint8_t> global_palette_;                 // RGB triples of the global colour table
  std::unordered_map<uint32_t, uint8_t> global_index_;  // colour -> global table index
  std::vector<uint8_t> indices_;                        // scratch: palette indices of one frame
  std::vector<uint8_t> encoded_;                        // scratch: LZW output
};

/// A decoded GIF: every frame fully composited at the logical screen size.
struct GifAnimation {
  int width = 0;                 ///< logical screen width
  int height = 0;                ///< logical screen height
  int loop_count = -1;           ///< NETSCAPE2.0 loop count (0 = forever); -1 if absent
  std::vector<RgbImage> frames;  ///< composited frames, in order
  std::vector<int> delays_cs;    ///< per-frame delay in hundredths of a second
};

/// Reads a GIF (87a/89a, global and local palettes, interlacing, disposal methods,
/// transparency). Enough for tests and tools; not a hardened decoder for hostile input.
GifAnimation ReadGif(const std::string& path);

}  // namespace skillgrid::envs
