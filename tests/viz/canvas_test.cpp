// The bitmap font and raster helpers.
#include "viz/canvas.h"

#include <gtest/gtest.h>

namespace skillgrid::viz {
namespace {

TEST(Canvas, GlyphsAreDistinctAndDrawn) {
  // Every required glyph has ink and differs from the others.
  const std::string chars = "abcdefghijklmnopqrstuvwxyz0123456789-.:ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  auto rows = [](char c) {  // all 9 rows, descender included
    std::string r(reinterpret_cast<const char*>(Glyph(c)), 7);
    const uint8_t* d = GlyphDescender(c);
    r += d ? std::string(reinterpret_cast<const char*>(d), 2) : std::string(2, '\0');
    return r;
  };
  for (size_t i = 0; i < chars.size(); ++i) {
    const std::string g = rows(chars[i]);
    EXPECT_NE(g.find_first_not_of('\0'), std::string::npos) << chars[i] << " has no ink";
    for (size_t j = 0; j < i; ++j) EXPECT_NE(g, rows(chars[j])) << chars[i] << " vs " << chars[j];
  }
  EXPECT_EQ(GlyphDescender('a'), nullptr);
  ASSERT_NE(GlyphDescender('g'), nullptr);
  EXPECT_EQ(Glyph('\x01'), Glyph('?'));
  envs::RgbImage img;
  Clear(&img, 20, 10, {0, 0, 0});
  EXPECT_EQ(DrawText(&img, 1, 1, "-", {255, 255, 255}), 1 + kGlyphAdvance);
  // '-' is row 3 fully set: pixels (1..5, 4).
  for (int x = 1; x <= 5; ++x) EXPECT_EQ(PixelAt(img, x, 4), (Rgb{255, 255, 255}));
  EXPECT_EQ(PixelAt(img, 1, 3), (Rgb{0, 0, 0}));
  EXPECT_EQ(PixelAt(img, 6, 4), (Rgb{0, 0, 0}));
}

TEST(Canvas, TextWidthScaleAndWrapping) {
  EXPECT_EQ(TextWidth("abc"), 17);
  EXPECT_EQ(TextWidth("abc", 2), 34);
  EXPECT_EQ(TextWidth(""), 0);
  const auto lines = WrapText("go to the red ball next to the door", 6 * 12);
  for (const auto& l : lines) EXPECT_LE(TextWidth(l), 6 * 12);
  EXPECT_EQ(lines.front(), "go to the");
  EXPECT_EQ(FitText("GoToRedBallGrey", TextWidth("GoToRed..")), "GoToRed..");
}

TEST(Canvas, ClippedDrawing) {
  envs::RgbImage img;
  Clear(&img, 8, 8, {1, 2, 3});
  FillRect(&img, {-4, -4, 6, 6}, {9, 9, 9});
  EXPECT_EQ(PixelAt(img, 1, 1), (Rgb{9, 9, 9}));
  EXPECT_EQ(PixelAt(img, 2, 2), (Rgb{1, 2, 3}));
  StrokeRect(&img, {0, 0, 8, 8}, {5, 5, 5});
  EXPECT_EQ(PixelAt(img, 7, 3), (Rgb{5, 5, 5}));
  EXPECT_EQ(PixelAt(img, 3, 3), (Rgb{1, 2, 3}));
  envs::RgbImage small;
  Clear(&small, 3, 3, {7, 7, 7});
  Blit(&img, small, 6, 6);  // clipped to 2x2
  EXPECT_EQ(PixelAt(img, 7, 7), (Rgb{7, 7, 7}));
  SetPixel(&img, 100, 100, {0, 0, 0});  // ignored
}

}  // namespace
}  // namespace skillgrid::viz
