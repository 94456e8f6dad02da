// Round trips and error handling of the PNG and GIF files.
#include "envs/image_io.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <stdexcept>
#include <string>

#include "envs/render.h"
#include "envs/world.h"

namespace skillgrid::envs {
namespace {

namespace fs = std::filesystem;

/// A fresh, empty temporary directory per test.
class ImageIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("skillgrid_image_io_" + std::string(info->name()) + "_" +
                                        std::to_string(std::random_device()()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

/// An image whose every pixel differs from its neighbours (many distinct colours).
RgbImage Gradient(int w, int h, int seed = 0) {
  RgbImage img;
  img.Resize(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(x * 7 + seed);
      p[1] = static_cast<uint8_t>(y * 11 + seed * 3);
      p[2] = static_cast<uint8_t>((x ^ y) * 5);
    }
  }
  return img;
}

/// An image of random pixels drawn from `ncolors` fixed colours.
RgbImage Noise(int w, int h, int ncolors, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> palette;
  for (int i = 0; i < ncolors; ++i) palette.push_back((i * 2654435761u) & 0xffffff);
  RgbImage img;
  img.Resize(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const uint32_t c = palette[rng() % ncolors];
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(c >> 16);
      p[1] = static_cast<uint8_t>(c >> 8);
      p[2] = static_cast<uint8_t>(c);
    }
  }
  return img;
}

size_t DistinctColors(const RgbImage& img) {
  std::set<uint32_t> colors;
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    colors.insert((img.pixels[i] << 16) | (img.pixels[i + 1] << 8) | img.pixels[i + 2]);
  }
  return colors.size();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Expects `fn` to throw std::runtime_error whose message names `path`.
template <class Fn>
void ExpectErrorNaming(Fn fn, const std::string& path) {
  try {
    fn();
    ADD_FAILURE() << "no exception for " << path;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

// ----- PNG ------------------------------------------------------------------------------------

TEST_F(ImageIoTest, PngRoundTripIsExact) {
  const RgbImage img = Gradient(37, 23);
  const std::string path = Path("a.png");
  WritePng(path, img);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(ReadBytes(path).substr(1, 3), "PNG");
  const RgbImage back = ReadPng(path);
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 23);
  EXPECT_EQ(back.pixels, img.pixels);
}

TEST_F(ImageIoTest, PngOverwritesAnExistingFile) {
  const std::string path = Path("a.png");
  WritePng(path, Gradient(10, 10));
  const RgbImage second = Gradient(4, 6, 9);
  WritePng(path, second);
  EXPECT_EQ(ReadPng(path).pixels, second.pixels);
}

TEST_F(ImageIoTest, RenderedFrameSurvivesPng) {
  WorldState w;
  w.grid = Grid(6, 5);
  w.agent_pos = {2, 2};
  w.Place({4, 3}, MakeObject(ObjectType::kBall, Color::kPurple));
  RgbImage img;
  RenderGrid(w, RenderOptions(), &img);
  WritePng(Path("grid.png"), img);
  EXPECT_EQ(ReadPng(Path("grid.png")).pixels, img.pixels);
}

TEST_F(ImageIoTest, PngErrorsNameTheFile) {
  const std::string missing = Path("missing.png");
  ExpectErrorNaming([&] { ReadPng(missing); }, missing);
  const std::string garbage = Path("garbage.png");
  WriteBytes(garbage, "this is not a png file at all");
  ExpectErrorNaming([&] { ReadPng(garbage); }, garbage);
  // A PNG cut in half.
  const std::string cut = Path("cut.png");
  WritePng(cut, Gradient(64, 64));
  const std::string bytes = ReadBytes(cut);
  WriteBytes(cut, bytes.substr(0, bytes.size() / 2));
  ExpectErrorNaming([&] { ReadPng(cut); }, cut);
  const std::string nodir = Path("no/such/dir/x.png");
  ExpectErrorNaming([&] { WritePng(nodir, Gradient(2, 2)); }, nodir);
}

TEST_F(ImageIoTest, FailedPngWriteKeepsTheOldFile) {
  const std::string path = Path("keep.png");
  const RgbImage old = Gradient(8, 8);
  WritePng(path, old);
  // The temporary file cannot be created (a directory is in its way).
  fs::create_directory(path + ".tmp");
  ExpectErrorNaming([&] { WritePng(path, Gradient(3, 3)); }, path);
  EXPECT_EQ(ReadPng(path).pixels, old.pixels);
  fs::remove(path + ".tmp");
  // An empty image is refused before anything is touched.
  ExpectErrorNaming([&] { WritePng(path, RgbImage()); }, path);
  EXPECT_EQ(ReadPng(path).pixels, old.pixels);
}

// ----- GIF ------------------------------------------------------------------------------------

TEST_F(ImageIoTest, GifOfRenderedEpisodeRoundTripsExactly) {
  WorldState w;
  w.grid = Grid(7, 7);
  for (int i = 0; i < 7; ++i) {
    w.Place({i, 0}, MakeObject(ObjectType::kWall, Color::kGrey));
    w.Place({i, 6}, MakeObject(ObjectType::kWall, Color::kGrey));
    w.Place({0, i}, MakeObject(ObjectType::kWall, Color::kGrey));
    w.Place({6, i}, MakeObject(ObjectType::kWall, Color::kGrey));
  }
  w.Place({4, 2}, MakeObject(ObjectType::kKey, Color::kYellow));
  w.Place({6, 3},
          MakeObject(ObjectType::kDoor, Color::kYellow, static_cast<uint8_t>(DoorState::kLocked)));
  w.Place({5, 5}, MakeObject(ObjectType::kGoal, Color::kGreen));
  w.agent_pos = {1, 1};
  w.agent_dir = 0;
  const Action actions[] = {Action::kForward, Action::kRight,  Action::kForward, Action::kLeft,
                            Action::kForward, Action::kPickup, Action::kRight};
  std::vector<RgbImage> frames;
  RgbImage img;
  RenderGrid(w, RenderOptions(), &img);
  frames.push_back(img);
  for (Action a : actions) {
    StepWorld(w, a);
    RenderGrid(w, RenderOptions(), &img);
    frames.push_back(img);
  }
  const std::string path = Path("episode.gif");
  {
    GifWriter gif(path);
    for (size_t k = 0; k < frames.size(); ++k) {
      ASSERT_LE(DistinctColors(frames[k]), 256u);
      gif.AddFrame(frames[k], 10 + static_cast<int>(k));
    }
    EXPECT_EQ(gif.frame_count(), static_cast<int>(frames.size()));
    gif.Close();
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const GifAnimation anim = ReadGif(path);
  EXPECT_EQ(anim.width, 7 * 32);
  EXPECT_EQ(anim.height, 7 * 32);
  EXPECT_EQ(anim.loop_count, 0);
  ASSERT_EQ(anim.frames.size(), frames.size());
  for (size_t k = 0; k < frames.size(); ++k) {
    EXPECT_EQ(anim.delays_cs[k], 10 + static_cast<int>(k));
    EXPECT_EQ(anim.frames[k].pixels, frames[k].pixels) << "frame " << k;
  }
  // Later frames store only what changed: the whole file is far smaller than raw frames.
  EXPECT_LT(fs::file_size(path), frames.size() * frames[0].pixels.size() / 20);
}

TEST_F(ImageIoTest, GifLzwHandlesFullTablesAndTinyPalettes) {
  // Random pixels overflow the 4096-entry LZW table many times; sizes cover 1..256 colours.
  const std::string path = Path("noise.gif");
  std::vector<RgbImage> frames = {Noise(300, 200, 256, 1), Noise(300, 200, 2, 2),
                                  Noise(300, 200, 1, 3),   Noise(300, 200, 3, 4),
                                  Noise(300, 200, 17, 5),  Noise(300, 200, 256, 6)};
  GifWriter gif(path, 3);
  for (const RgbImage& f : frames) gif.AddFrame(f, 7);
  gif.Close();
  const GifAnimation anim = ReadGif(path);
  EXPECT_EQ(anim.loop_count, 3);
  ASSERT_EQ(anim.frames.size(), frames.size());
  for (size_t k = 0; k < frames.size(); ++k) {
    EXPECT_EQ(anim.frames[k].pixels, frames[k].pixels) << "frame " << k;
    EXPECT_EQ(anim.delays_cs[k], 7);
  }
}

TEST_F(ImageIoTest, GifRepeatsUnchangedFramesCheaply) {
  const std::string path = Path("still.gif");
  const RgbImage img = Noise(64, 48, 5, 11);
  GifWriter gif(path);
  gif.AddFrame(img, 5);
  gif.Close();
  const auto one = fs::file_size(path);
  {
    GifWriter gif2(path);
    for (int k = 0; k < 10; ++k) gif2.AddFrame(img, 5);
    // The destructor finishes the file.
  }
  EXPECT_LT(fs::file_size(path), one + 10 * 40);
  const GifAnimation anim = ReadGif(path);
  ASSERT_EQ(anim.frames.size(), 10u);
  for (const RgbImage& f : anim.frames) EXPECT_EQ(f.pixels, img.pixels);
}

TEST_F(ImageIoTest, GifWithManyColoursIsApproximatedThenExactAgain) {
  const std::string path = Path("many.gif");
  const RgbImage rich = Gradient(64, 64);
  ASSERT_GT(DistinctColors(rich), 256u);
  const RgbImage simple = Noise(64, 64, 40, 8);  // new colours: needs its own palette
  GifWriter gif(path);
  gif.AddFrame(rich, 4);
  gif.AddFrame(simple, 4);
  gif.Close();
  const GifAnimation anim = ReadGif(path);
  ASSERT_EQ(anim.frames.size(), 2u);
  double err = 0;
  for (size_t i = 0; i < rich.pixels.size(); ++i) {
    err += std::abs(static_cast<int>(anim.frames[0].pixels[i]) - rich.pixels[i]);
  }
  err /= static_cast<double>(rich.pixels.size());
  EXPECT_LT(err, 10.0);  // median cut gives 8.9 here, a uniform 6x7x6 palette 11.9
  EXPECT_EQ(anim.frames[1].pixels, simple.pixels);
}

TEST_F(ImageIoTest, GifErrors) {
  const std::string path = Path("bad.gif");
  {
    GifWriter gif(path);
    gif.AddFrame(Gradient(8, 8), 1);
    EXPECT_THROW(gif.AddFrame(Gradient(9, 8), 1), std::runtime_error);
  }
  EXPECT_FALSE(fs::exists(path));  // the failed writer removed its temporary file
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  {
    GifWriter empty(Path("empty.gif"));
    ExpectErrorNaming([&] { empty.Close(); }, Path("empty.gif"));
  }
  EXPECT_FALSE(fs::exists(Path("empty.gif")));
  const std::string nodir = Path("no/such/dir/x.gif");
  ExpectErrorNaming([&] { GifWriter g(nodir); }, nodir);

  const std::string missing = Path("missing.gif");
  ExpectErrorNaming([&] { ReadGif(missing); }, missing);
  const std::string garbage = Path("garbage.gif");
  WriteBytes(garbage, "GIF89a\x10");
  ExpectErrorNaming([&] { ReadGif(garbage); }, garbage);
  const std::string good = Path("good.gif");
  {
    GifWriter g(good);
    g.AddFrame(Noise(50, 50, 200, 4), 1);
  }
  std::string bytes = ReadBytes(good);
  WriteBytes(garbage, bytes.substr(0, bytes.size() - 40));
  ExpectErrorNaming([&] { ReadGif(garbage); }, garbage);
}

}  // namespace
}  // namespace skillgrid::envs
