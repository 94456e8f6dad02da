// Raster primitives and a 5x7 bitmap font drawing into envs::RgbImage, shared by the SFML window
// and the headless exports (no SFML here). Everything clips to the image; nothing allocates
// except the Canvas helpers that create images.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "envs/image_io.h"

namespace skillgrid::viz {

/// An RGB colour.
struct Rgb {
  uint8_t r = 0;  ///< red 0..255
  uint8_t g = 0;  ///< green 0..255
  uint8_t b = 0;  ///< blue 0..255
  /// Component-wise equality.
  friend bool operator==(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
  friend bool operator!=(Rgb a, Rgb b) { return !(a == b); }
};

/// An axis-aligned rectangle in pixels: [x, x + w) x [y, y + h).
struct Rect {
  int x = 0;  ///< left column
  int y = 0;  ///< top row
  int w = 0;  ///< width in pixels
  int h = 0;  ///< height in pixels
  /// True if (px, py) lies inside.
  bool Contains(int px, int py) const { return px >= x && py >= y && px < x + w && py < y + h; }
  /// Centre pixel (rounded down).
  int cx() const { return x + w / 2; }
  int cy() const { return y + h / 2; }
};

/// The palette of the viewer and exports (dark background, light text).
namespace palette {
inline constexpr Rgb kBackground{24, 24, 28};  ///< image background
inline constexpr Rgb kPanel{36, 36, 42};       ///< panel background
inline constexpr Rgb kText{230, 230, 230};     ///< normal text
inline constexpr Rgb kDim{150, 150, 160};      ///< secondary text, axes
inline constexpr Rgb kAccent{255, 80, 80};     ///< highlighted row, markers
inline constexpr Rgb kGood{90, 220, 110};      ///< success
}  // namespace palette

/// Returns the colour of pixel (x, y); (x, y) must be inside the image.
Rgb PixelAt(const envs::RgbImage& image, int x, int y);

/// Sets pixel (x, y) if it is inside the image.
void SetPixel(envs::RgbImage* image, int x, int y, Rgb c);

/// Resizes `image` to w x h and fills it with `c`.
void Clear(envs::RgbImage* image, int w, int h, Rgb c);

/// Fills a rectangle (clipped).
void FillRect(envs::RgbImage* image, Rect r, Rgb c);

/// Draws a rectangle outline `thickness` pixels wide, inside `r` (clipped).
void StrokeRect(envs::RgbImage* image, Rect r, Rgb c, int thickness = 1);

/// Horizontal line from x0 to x1 inclusive (either order) at row y, `thickness` rows downward.
void HLine(envs::RgbImage* image, int x0, int x1, int y, Rgb c, int thickness = 1);

/// Vertical line from y0 to y1 inclusive (either order) at column x, `thickness` columns right.
void VLine(envs::RgbImage* image, int x, int y0, int y1, Rgb c, int thickness = 1);

/// Copies `src` with its top-left corner at (x, y) (clipped).
void Blit(envs::RgbImage* dst, const envs::RgbImage& src, int x, int y);

/// Glyph size of the bitmap font at scale 1: 5x7 pixels above the baseline (g j p q y add two
/// rows below it), advance 6, line height 10.
inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 7;
inline constexpr int kGlyphAdvance = 6;
inline constexpr int kLineHeight = 10;

/// The 7 rows of a printable ASCII character's 5x7 glyph (bit 4 = leftmost column); characters
/// outside 32..126 map to '?'.
const uint8_t* Glyph(char c);

/// The two rows below the baseline of g, j, p, q, y; null for other characters.
const uint8_t* GlyphDescender(char c);

/// Width in pixels of `text` at integer `scale` (no trailing spacing).
int TextWidth(std::string_view text, int scale = 1);

/// Draws `text` with its top-left at (x, y) at integer `scale`; returns the x after the text.
int DrawText(envs::RgbImage* image, int x, int y, std::string_view text, Rgb c, int scale = 1);

/// Shortens `text` with a trailing ".." so that it fits `max_width` pixels at `scale`.
std::string FitText(std::string_view text, int max_width, int scale = 1);

/// Splits `text` at spaces into lines that fit `max_width` pixels at `scale` (long words are
/// cut); returns at least one line.
std::vector<std::string> WrapText(std::string_view text, int max_width, int scale = 1);

}  // namespace skillgrid::viz
