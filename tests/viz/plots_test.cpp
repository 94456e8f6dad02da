// Run plots: the CSV reader, the learning-curve chart's pixels, WriteRunPlots' files, and
// `skillgrid plot`.
#include "viz/plots.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "envs/image_io.h"
#include "test_util.h"
#include "viz/heatmap.h"

namespace skillgrid::viz {
namespace {

namespace fs = std::filesystem;
using testing::Cli;
using testing::RunCommand;

const std::vector<std::string> kLevels = {"BabyAI-GoToObj-v0", "BabyAI-GoToLocal-v0"};

// The trainer's log.csv layout for kLevels: GoToObj climbs from 0 to 1, GoToLocal has no episode
// in the first two rows (empty fields) and then sits at 0.5.
const char* kLog =
    "update,frames,episodes,duration_s,fps,mean_success,success_GoToObj,success_GoToLocal,"
    "return_GoToObj,return_GoToLocal,episodes_GoToObj,episodes_GoToLocal,policy_loss,value_loss,"
    "entropy,value,approx_kl,clip_frac,grad_norm\n"
    "1,2560,3,1.0,2560,0,0,,0,,3,0,0.1,1,1.9,0,0,0,1\n"
    "2,5120,8,2.0,2560,0.2,0.2,,0.1,,6,0,0.1,1,1.9,0,0,0,1\n"
    "3,7680,14,3.0,2560,0.5,0.5,0.5,0.4,0.3,9,5,0.1,1,1.9,0,0,0,1\n"
    "4,10240,20,4.0,2560,0.65,0.8,0.5,0.6,0.3,12,8,0.1,1,1.9,0,0,0,1\n"
    "5,12800,27,5.0,2560,0.75,1,0.5,0.8,0.3,15,12,0.1,1,1.9,0,0,0,1\n";

// Pixels of colour `c` inside `r`.
int CountColour(const envs::RgbImage& img, Rect r, Rgb c) {
  int n = 0;
  for (int y = r.y; y < r.y + r.h; ++y) {
    for (int x = r.x; x < r.x + r.w; ++x) n += PixelAt(img, x, y) == c;
  }
  return n;
}

// Width and height from a PNG's IHDR chunk (independent of the decoder).
std::pair<int, int> PngSize(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char h[24] = {};
  in.read(reinterpret_cast<char*>(h), sizeof(h));
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!in || !std::equal(sig, sig + 8, h) || std::string(reinterpret_cast<char*>(h + 12), 4) != "IHDR") return {-1, -1};
  auto be32 = [&](int o) { return (h[o] << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]; };
  return {be32(16), be32(20)};
}

TEST(PlotCsv, ParsesColumnsWithEmptyFieldsAsNaNAndSkipsRaggedRows) {
  const CsvTable t = ParseCsvTable("a,b,c\n1,2,3\n4,,6\n7,8\n9,10,11,12\n\n13,14,1.5e3\r\n", "t.csv");
  ASSERT_EQ(t.names, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(t.rows(), 3);
  EXPECT_EQ(t.skipped_rows, 2);
  EXPECT_EQ(t.columns[0], (std::vector<double>{1, 4, 13}));
  EXPECT_TRUE(std::isnan(t.columns[1][1]));
  EXPECT_EQ(t.columns[2][2], 1500.0);
  EXPECT_EQ(t.Find("c"), 2);
  EXPECT_EQ(t.Find("d"), -1);
  // A last line without newline is kept when whole, skipped when cut mid-number.
  EXPECT_EQ(ParseCsvTable("a,b\n1,2\n3,4", "t").rows(), 2);
  const CsvTable cut = ParseCsvTable("a,b\n1,2\n3,4e", "t");
  EXPECT_EQ(cut.rows(), 1);
  EXPECT_EQ(cut.skipped_rows, 1);
}

// Expects `f` to throw std::runtime_error whose message contains every one of `parts`.
template <typename F>
void ExpectError(F f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning " << parts[0];
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
  }
}

TEST(PlotCsv, MalformedHeadersAndGarbageGiveClearErrors) {
  ExpectError([] { ParseCsvTable("", "log.csv"); }, {"log.csv", "empty"});
  ExpectError([] { ParseCsvTable("1,2,3\n4,5,6\n", "log.csv"); }, {"log.csv", "malformed header"});
  ExpectError([] { ParseCsvTable("a,,c\n1,2,3\n", "log.csv"); }, {"log.csv", "malformed header", "column 2"});
  ExpectError([] { ParseCsvTable("a,b,a\n", "log.csv"); }, {"log.csv", "'a' appears twice"});
  ExpectError([] { ParseCsvTable(std::string("\x01\x7f\xff garbage\n\x02,\x03\n", 16), "log.csv"); },
              {"log.csv", "malformed header"});
  ExpectError([] { ParseCsvTable("a,b\n1,2\n3,oops\n4,5\n", "log.csv"); },
              {"log.csv", "line 3", "'b'", "'oops' is not a number"});
  // A well-formed table that is not a training log.
  const CsvTable other = ParseCsvTable("x,y\n1,2\n", "log.csv");
  ExpectError([&] { CurvesFromTable(other); }, {"log.csv", "no 'frames' column"});
  const CsvTable no_levels = ParseCsvTable("frames,mean_success\n1,2\n", "log.csv");
  ExpectError([&] { CurvesFromTable(no_levels); }, {"log.csv", "success_<level>"});
}

TEST(PlotCurves, HeldOutLevelsOfAnEvalTableAreLabelledAsSuch) {
  // train --eval-unseen writes the held-out levels after mean_unseen_success; the black mean
  // stays the trained levels' mean_success.
  const CsvTable eval = ParseCsvTable(
      "update,frames,mean_success,success_GoToObj,return_GoToObj,mean_unseen_success,success_GoToDoor,"
      "return_GoToDoor\n1,100,0.5,0.5,0.4,0.25,0.25,0.2\n",
      "eval.csv");
  const LearningCurves c = CurvesFromTable(eval);
  ASSERT_EQ(c.levels.size(), 2u);
  EXPECT_EQ(c.levels[0].label, "GoToObj");
  EXPECT_EQ(c.levels[1].label, "GoToDoor (held out)");
  EXPECT_EQ(c.levels[1].y, std::vector<double>{0.25});
  EXPECT_EQ(c.mean, std::vector<double>{0.5});
  const CsvTable plain = ParseCsvTable("frames,mean_success,success_GoToObj\n1,0.5,0.5\n", "eval.csv");
  EXPECT_EQ(CurvesFromTable(plain).levels[0].label, "GoToObj");
}

TEST(PlotCurves, CompareCurvesPutsEachRunOnTheUnionOfXInterpolatingBetweenItsPoints) {
  const CsvTable a = ParseCsvTable("frames,mean_success\n0,0.0\n100,0.5\n200,1.0\n", "a/log.csv");
  const CsvTable b = ParseCsvTable("frames,mean_success\n50,0.2\n150,0.4\n", "b/log.csv");
  const LearningCurves c = CompareCurves({{"a", a}, {"b", b}});
  ASSERT_EQ(c.x, (std::vector<double>{0, 50, 100, 150, 200}));
  ASSERT_EQ(c.levels.size(), 2u);
  EXPECT_EQ(c.levels[0].label, "a");
  EXPECT_DOUBLE_EQ(c.levels[0].y[1], 0.25);  // halfway between 0 and 0.5
  EXPECT_DOUBLE_EQ(c.levels[0].y[3], 0.75);
  EXPECT_TRUE(std::isnan(c.levels[1].y[0]));  // before b's first point
  EXPECT_DOUBLE_EQ(c.levels[1].y[2], 0.3);
  EXPECT_TRUE(std::isnan(c.levels[1].y[4]));  // after b's last point
  EXPECT_TRUE(c.mean.empty());
  const CsvTable no_mean = ParseCsvTable("frames,success_GoTo\n0,0.1\n", "c/log.csv");
  ExpectError([&] { CompareCurves({{"a", a}, {"c", no_mean}}); }, {"c/log.csv", "mean_success"});
}

TEST(PlotCurves, FinalSuccessAveragesEachRunsLastRowsPerLevel) {
  const CsvTable a = ParseCsvTable(
      "frames,mean_success,success_GoTo,success_Pickup\n100,0.1,0.2,0\n200,0.5,0.6,0.4\n300,0.7,,0.8\n", "a/log.csv");
  const CsvTable b = ParseCsvTable("frames,mean_success,success_Open\n150,0.3,0.3\n", "b/log.csv");
  FinalSuccessTable t = FinalSuccess({{"a", a}, {"b", b}}, 2);
  ASSERT_EQ(t.levels, (std::vector<std::string>{"GoTo", "Pickup", "Open", "mean"}));
  ASSERT_EQ(t.runs, (std::vector<std::string>{"a", "b"}));
  EXPECT_DOUBLE_EQ(t.success[0][0], 0.6);  // the empty field in the last row is skipped
  EXPECT_DOUBLE_EQ(t.success[1][0], 0.6);  // (0.4 + 0.8) / 2
  EXPECT_TRUE(std::isnan(t.success[2][0]));  // a has no Open column
  EXPECT_DOUBLE_EQ(t.success[3][0], 0.6);
  EXPECT_DOUBLE_EQ(t.success[2][1], 0.3);  // b has one row only
  EXPECT_TRUE(std::isnan(t.success[0][1]));
  EXPECT_EQ(t.frames, (std::vector<double>{300, 150}));
  t = FinalSuccess({{"a", a}}, 1);
  EXPECT_TRUE(std::isnan(t.success[0][0]));  // only the last row, where GoTo is empty
  EXPECT_DOUBLE_EQ(t.success[1][0], 0.8);
  const std::string text = FormatFinalSuccess(FinalSuccess({{"a", a}, {"b", b}}, 2));
  EXPECT_NE(text.find("level"), std::string::npos) << text;
  EXPECT_NE(text.find("\nGoTo         0.600           -\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nmean         0.600       0.300\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nframes         300         150\n"), std::string::npos) << text;
  ExpectError([&] { FinalSuccess({{"a", a}}, 0); }, {"must be >= 1", "got 0"});
}

TEST(PlotCurves, AverageSameLabelMergesRunsThatShareALabel) {
  const CsvTable a = ParseCsvTable("frames,mean_success,success_GoTo\n0,0.0,0.0\n100,0.4,0.4\n", "a/log.csv");
  const CsvTable b = ParseCsvTable("frames,mean_success,success_GoTo\n0,0.2,0.2\n200,0.8,\n", "b/log.csv");
  const CsvTable c = ParseCsvTable("frames,mean_success,success_GoTo\n0,1.0,1.0\n", "c/log.csv");
  const std::vector<NamedTable> runs{{"poly", a}, {"shared", c}, {"poly", b}};
  const LearningCurves merged = AverageSameLabel(CompareCurves(runs));
  ASSERT_EQ(merged.x, (std::vector<double>{0, 100, 200}));
  ASSERT_EQ(merged.levels.size(), 2u);
  EXPECT_EQ(merged.levels[0].label, "poly");  // first appearance first
  EXPECT_EQ(merged.levels[1].label, "shared");
  EXPECT_DOUBLE_EQ(merged.levels[0].y[0], 0.1);
  EXPECT_DOUBLE_EQ(merged.levels[0].y[1], 0.45);  // a's 0.4 and b interpolated to 0.5
  EXPECT_TRUE(std::isnan(merged.levels[0].y[2]));  // a has no point at 200
  EXPECT_DOUBLE_EQ(merged.levels[1].y[0], 1.0);
  std::vector<int> members;
  const FinalSuccessTable t = AverageSameLabel(FinalSuccess(runs, 1), &members);
  ASSERT_EQ(t.runs, (std::vector<std::string>{"poly", "shared"}));
  EXPECT_EQ(members, (std::vector<int>{2, 1}));
  EXPECT_DOUBLE_EQ(t.success[0][0], 0.4);  // GoTo: b's last row is empty, so a's alone
  EXPECT_DOUBLE_EQ(t.success[1][0], 0.6);  // mean: (0.4 + 0.8) / 2
  EXPECT_DOUBLE_EQ(t.success[1][1], 1.0);
  EXPECT_EQ(t.frames, (std::vector<double>{150, 0}));
}

TEST(PlotCurves, RowsUpToFramesKeepsTheRowsWithinTheBudget) {
  const CsvTable t = ParseCsvTable("frames,mean_success\n100,0.1\n200,0.2\n300,0.3\n", "a/log.csv");
  const CsvTable cut = RowsUpToFrames(t, 200);
  ASSERT_EQ(cut.rows(), 2);
  EXPECT_EQ(cut.names, t.names);
  EXPECT_DOUBLE_EQ(cut.columns[1][1], 0.2);
  EXPECT_EQ(RowsUpToFrames(t, 99).rows(), 0);
  EXPECT_EQ(RowsUpToFrames(t, 1e9).rows(), 3);
  ExpectError([&] { RowsUpToFrames(ParseCsvTable("update,mean_success\n1,0.5\n", "b/eval.csv"), 10); },
              {"b/eval.csv", "no frames column"});
}

TEST(PlotCurves, CentredMovingAverageMatchesPandasCentredRolling) {
  const double nan = std::nan("");
  const auto expect = [](const std::vector<double>& got, const std::vector<double>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(got[i])) << i << ": " << got[i];
      } else {
        EXPECT_NEAR(got[i], want[i], 1e-12) << i;
      }
    }
  };
  const std::vector<double> v{1, 2, 3, 4, 5, 6};
  expect(CentredMovingAverage(v, 1), v);
  expect(CentredMovingAverage(v, 2), {nan, 1.5, 2.5, 3.5, 4.5, 5.5});  // rows i-1, i
  expect(CentredMovingAverage(v, 3), {nan, 2, 3, 4, 5, nan});
  expect(CentredMovingAverage(v, 4), {nan, nan, 2.5, 3.5, 4.5, nan});  // rows i-2 .. i+1
  expect(CentredMovingAverage(v, 7), {nan, nan, nan, nan, nan, nan});   // no full window
  expect(CentredMovingAverage({0.2, nan, 0.4, 0.6, 0.8, 1.0}, 3), {nan, nan, nan, 0.6, 0.8, nan});
  ExpectError([&] { CentredMovingAverage(v, 0); }, {"window", "got 0"});
}

TEST(PlotCurves, EpisodesToReachTakesTheFirstRowWhoseSmoothedSuccessReaches) {
  // A reaches 0.95 smoothed over 3 rows at row 2 ((0.9 + 1 + 1) / 3), when it had 6 episodes;
  // B peaks at 0.3; the mean reaches at row 3, after 40 episodes of all levels.
  const CsvTable a = ParseCsvTable(
      "frames,episodes,mean_success,success_A,success_B,episodes_A,episodes_B\n"
      "1,10,0.5,0.5,0,2,1\n2,20,0.9,0.9,0.1,4,2\n3,30,0.92,1,0.2,6,3\n4,40,1,1,0.3,8,4\n5,50,1,1,0.4,10,5\n"
      "6,60,1,1,0.4,12,6\n",
      "a/log.csv");
  // Another seed: A reaches at row 1 with 4 episodes; no mean_success column.
  const CsvTable b = ParseCsvTable("episodes,success_A,episodes_A\n5,1,4\n9,1,4\n12,1,7\n", "b/log.csv");
  ReachOptions o;
  o.threshold = 0.95;
  o.window = 3;
  EpisodesToReachTable t = EpisodesToReach({{"poly", a}, {"poly", b}}, o);
  ASSERT_EQ(t.levels, (std::vector<std::string>{"A", "B", "all"}));
  EXPECT_EQ(t.reached[0], (std::vector<int>{1, 1}));
  EXPECT_EQ(t.episodes[0], (std::vector<double>{6, 4}));
  EXPECT_EQ(t.reached[1], (std::vector<int>{0, 0}));
  EXPECT_NEAR(t.best[1][0], (0.3 + 0.4 + 0.4) / 3, 1e-12);
  EXPECT_TRUE(std::isnan(t.best[1][1]));                        // b has no B column
  EXPECT_EQ(t.reached[2], (std::vector<int>{1, 0}));
  EXPECT_DOUBLE_EQ(t.episodes[2][0], 40);  // row 3: (0.92 + 1 + 1) / 3; row 2 had 0.94
  const EpisodesToReachTable merged = AverageSameLabel(t);
  ASSERT_EQ(merged.runs, (std::vector<std::string>{"poly"}));
  EXPECT_EQ(merged.members, (std::vector<int>{2}));
  EXPECT_DOUBLE_EQ(merged.episodes[0][0], 5);  // (6 + 4) / 2
  EXPECT_EQ(merged.reached[2][0], 1);
  EXPECT_DOUBLE_EQ(merged.episodes[2][0], 40);  // the mean over the one run that reached
  const std::string text = FormatEpisodesToReach(merged);
  EXPECT_NE(text.find("\nA                 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nB      - (max 0.37)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nall        40 (1/2)\n"), std::string::npos) << text;
  t.episodes[0][0] = 1234567;
  EXPECT_NE(FormatEpisodesToReach(t).find("1,234,567"), std::string::npos) << FormatEpisodesToReach(t);
  o.threshold = 1.5;
  ExpectError([&] { EpisodesToReach({{"a", a}}, o); }, {"threshold", "(0, 1]"});
  o.threshold = 0.9;
  o.window = 0;
  ExpectError([&] { EpisodesToReach({{"a", a}}, o); }, {"window", "got 0"});
}

TEST(PlotCurves, CurveColoursAreDistinct) {
  for (int i = 0; i < 40; ++i) {
    for (int j = 0; j < i; ++j) EXPECT_NE(CurveColor(i), CurveColor(j)) << i << " vs " << j;
    for (Rgb c : {chart::kBackground, chart::kGrid, chart::kAxis, chart::kText, chart::kMean}) {
      EXPECT_NE(CurveColor(i), c) << i;
    }
  }
}

TEST(PlotCurves, LinesLandWhereTheDataSays) {
  // Two flat levels at 0.25 and 0.75 (the second starting at the third row), mean 0.5.
  LearningCurves c;
  c.x = {0, 1000, 2000, 3000, 4000};
  const double nan = std::nan("");
  c.levels = {{"Low", {0.25, 0.25, 0.25, 0.25, 0.25}}, {"High", {nan, nan, 0.75, 0.75, 0.75}}};
  c.mean = {0.5, 0.5, 0.5, 0.5, 0.5};
  CurveStyle style;
  style.width = 640;
  style.height = 400;
  style.title = "test chart";
  CurveLayout L;
  const envs::RgbImage img = RenderLearningCurves(c, style, &L);
  ASSERT_EQ(img.width, 640);
  ASSERT_EQ(img.height, 400);
  EXPECT_EQ(L.x_min, 0.0);
  EXPECT_EQ(L.x_max, 4000.0);
  const int mid = L.XPixel(3000);
  EXPECT_EQ(PixelAt(img, mid, L.YPixel(0.25)), CurveColor(0));
  EXPECT_EQ(PixelAt(img, mid, L.YPixel(0.75)), CurveColor(1));
  EXPECT_EQ(PixelAt(img, mid, L.YPixel(0.5)), chart::kMean);
  // Between the curves: background or grid only.
  const Rgb between = PixelAt(img, mid, L.YPixel(0.62));
  EXPECT_TRUE(between == chart::kBackground || between == chart::kGrid);
  // NaN rows draw nothing: no "High" pixels left of its first point.
  EXPECT_EQ(CountColour(img, {L.plot.x, L.plot.y, L.XPixel(2000) - 3 - L.plot.x, L.plot.h}, CurveColor(1)), 0);
  EXPECT_GT(CountColour(img, {L.XPixel(2000), L.plot.y, L.plot.w / 4, L.plot.h}, CurveColor(1)), 10);
  // Legend: a swatch of each colour outside the plot.
  EXPECT_GT(CountColour(img, L.legend, CurveColor(0)), 0);
  EXPECT_GT(CountColour(img, L.legend, CurveColor(1)), 0);
  EXPECT_GT(CountColour(img, L.legend, chart::kMean), 0);
  EXPECT_GE(L.legend.x, L.plot.x + L.plot.w);
  // Tick labels and title are drawn (text pixels left of and above the plot).
  EXPECT_GT(CountColour(img, {0, L.plot.y, L.plot.x, L.plot.h}, chart::kText), 0);
  EXPECT_GT(CountColour(img, {0, 0, img.width, L.plot.y}, chart::kText), 0);
}

TEST(PlotRun, WritesLearningCurvesWithEveryLevelsColourAndNoHeatmapWithoutSkills) {
  testing::TempDir dir("plots_run");
  testing::WriteFile(dir / "log.csv", kLog);
  const RunPlots plots = WriteRunPlots(dir.str());
  EXPECT_TRUE(plots.errors.empty()) << plots.errors[0];
  EXPECT_EQ(plots.learning_curves, dir / "plots/learning_curves.png");
  EXPECT_EQ(plots.written(), std::vector<std::string>{plots.learning_curves});
  // No skills.json (router none): no heatmap, no error; no eval.csv: no eval plot.
  EXPECT_TRUE(plots.skills_heatmap.empty());
  EXPECT_FALSE(fs::exists(dir / "plots/skills_heatmap.png"));
  EXPECT_FALSE(fs::exists(dir / "plots/eval_curves.png"));
  EXPECT_FALSE(fs::exists(dir / "plots/learning_curves.png.tmp"));

  const RunPlotOptions defaults;
  EXPECT_EQ(PngSize(plots.learning_curves), std::make_pair(defaults.width, defaults.height));
  const envs::RgbImage img = envs::ReadPng(plots.learning_curves);
  ASSERT_EQ(img.width, defaults.width);
  ASSERT_EQ(img.height, defaults.height);
  // The same chart rendered in memory gives the layout; every level's colour is in its plot area.
  const CsvTable table = ReadCsvTable(dir / "log.csv");
  CurveStyle style;
  style.width = defaults.width;
  style.height = defaults.height;
  CurveLayout L;
  RenderLearningCurves(CurvesFromTable(table), style, &L);
  for (int i = 0; i < 2; ++i) {
    EXPECT_GT(CountColour(img, L.plot, CurveColor(i)), 20) << "level " << i;
  }
  EXPECT_GT(CountColour(img, L.plot, chart::kMean), 20);
  EXPECT_EQ(CountColour(img, L.plot, CurveColor(2)), 0);  // only two levels
  // GoToObj ends at 1.0 at the last frame; GoToLocal's flat 0.5 is there too.
  EXPECT_EQ(PixelAt(img, L.XPixel(12800), L.YPixel(1.0)), CurveColor(0));
  EXPECT_EQ(PixelAt(img, L.XPixel(11000), L.YPixel(0.5)), CurveColor(1));
}

TEST(PlotRun, WritesDistillationCurvesWhenTheLogHasKlColumns) {
  testing::TempDir dir("plots_distill");
  testing::WriteFile(dir / "log.csv",
                     "update,frames,episodes,mean_success,success_GoToObj,success_GoToLocal,distill_coef,distill_kl,"
                     "kl_GoToObj,kl_GoToLocal\n"
                     "1,2560,3,0,0,,1,1.5,1.9,1.1\n"
                     "2,5120,8,0.2,0.2,0.1,1,0.8,1.0,0.6\n"
                     "3,7680,14,0.5,0.5,0.5,1,0.3,0.4,0.2\n");
  const RunPlots plots = WriteRunPlots(dir.str());
  EXPECT_TRUE(plots.errors.empty()) << plots.errors[0];
  ASSERT_EQ(plots.distill_curves, dir / "plots/distill_curves.png");
  EXPECT_EQ(plots.written().size(), 2u);
  // The axis reaches the largest KL (1.9), and both levels are drawn.
  const CsvTable table = ReadCsvTable(dir / "log.csv");
  const LearningCurves kl = CurvesFromTable(table, "frames", "kl_", "distill_kl");
  ASSERT_EQ(kl.levels.size(), 2u);
  EXPECT_EQ(kl.levels[1].label, "GoToLocal");
  EXPECT_DOUBLE_EQ(kl.mean[2], 0.3);
  CurveStyle style;
  style.y_max = 1.9;
  CurveLayout L;
  RenderLearningCurves(kl, style, &L);
  const envs::RgbImage img = envs::ReadPng(plots.distill_curves);
  EXPECT_EQ(PixelAt(img, L.XPixel(2560), L.YPixel(1.9)), CurveColor(0));
  EXPECT_GT(CountColour(img, L.plot, CurveColor(1)), 20);
  // (Without kl_ columns there is no such chart: the first PlotRun test checks written().)
}

TEST(PlotRun, WritesEvalCurvesAndTheStackedHeatmapWhenPresent) {
  testing::TempDir dir("plots_full");
  const RoutingSnapshot snap = testing::WriteFixtureRun(dir.str(), kLevels);
  testing::WriteFile(dir / "log.csv", kLog);
  testing::WriteFile(dir / "eval.csv",
                     "update,frames,mean_success,success_GoToObj,success_GoToLocal,return_GoToObj,return_GoToLocal,"
                     "length_GoToObj,length_GoToLocal\n"
                     "2,5120,0.25,0.5,0,0.4,0,30,64\n"
                     "4,10240,0.5,0.75,0.25,0.6,0.2,20,50\n");
  const RunPlots plots = WriteRunPlots(dir.str());
  EXPECT_TRUE(plots.errors.empty()) << plots.errors[0];
  ASSERT_EQ(plots.written().size(), 3u);
  EXPECT_EQ(plots.eval_curves, dir / "plots/eval_curves.png");
  EXPECT_EQ(plots.skills_heatmap, dir / "plots/skills_heatmap.png");
  const envs::RgbImage eval = envs::ReadPng(plots.eval_curves);
  EXPECT_GT(CountColour(eval, {0, 0, eval.width, eval.height}, CurveColor(0)), 20);
  EXPECT_GT(CountColour(eval, {0, 0, eval.width, eval.height}, CurveColor(1)), 20);
  // The heatmap stacks all three matrices (2 heads of actor.0, critic.0) like render --layer all.
  const envs::RgbImage heat = envs::ReadPng(plots.skills_heatmap);
  const envs::RgbImage expected = RenderRoutingStack(snap);
  ASSERT_EQ(heat.width, expected.width);
  ASSERT_EQ(heat.height, expected.height);
  EXPECT_EQ(heat.pixels, expected.pixels);
  int h = 0;
  for (const auto& m : snap.matrices) {
    HeatmapStyle hs;
    hs.vmax = 0.0f;
    hs.title = "layer " + m.layer + "  head " + std::to_string(m.head + 1) + "/" + std::to_string(m.num_heads) +
               "  frames " + std::to_string(snap.frames);
    h += RenderHeatmap(m, hs).height;
  }
  EXPECT_EQ(heat.height, h);
}

TEST(PlotRun, MalformedLogThrowsAndBadOptionalFilesAreReported) {
  testing::TempDir dir("plots_bad");
  ExpectError([&] { WriteRunPlots(dir.str()); }, {"log.csv", "does not exist"});
  ExpectError([&] { WriteRunPlots(dir / "nowhere"); }, {"nowhere", "does not exist"});
  testing::WriteFile(dir / "log.csv", "this is not, a log\n1,2\n");
  ExpectError([&] { WriteRunPlots(dir.str()); }, {"log.csv", "malformed header"});
  testing::WriteFile(dir / "log.csv", "update,frames,success_A\n1,100,0.5\n2,200,zz\n");
  ExpectError([&] { WriteRunPlots(dir.str()); }, {"log.csv", "line 3", "'zz' is not a number"});
  // A good log with a broken skills.json: the curves are written, the heatmap error is reported.
  testing::WriteFile(dir / "log.csv", "update,frames,success_A\n1,100,0.5\n2,200,0.7\n");
  testing::WriteFile(dir / "skills.json", "{not json");
  const RunPlots plots = WriteRunPlots(dir.str());
  EXPECT_TRUE(fs::exists(plots.learning_curves));
  EXPECT_TRUE(plots.skills_heatmap.empty());
  ASSERT_EQ(plots.errors.size(), 1u);
  EXPECT_NE(plots.errors[0].find("skills.json"), std::string::npos) << plots.errors[0];
}

TEST(PlotCommand, WritesAndPrintsThePathsOrFailsOnADirWithoutLog) {
  testing::TempDir dir("plots_cli");
  auto r = RunCommand(Cli() + " plot --run " + dir.str());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("has no log.csv"), std::string::npos) << r.output;
  testing::WriteFixtureRun(dir.str(), kLevels);
  testing::WriteFile(dir / "log.csv", kLog);
  r = RunCommand(Cli() + " plot --run " + dir.str() + " --x episodes");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("wrote " + (dir / "plots/learning_curves.png")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wrote " + (dir / "plots/skills_heatmap.png")), std::string::npos) << r.output;
  EXPECT_EQ(envs::ReadPng(dir / "plots/learning_curves.png").width, 960);
}

TEST(PlotCommand, CompareWritesOneChartOfTheRunsOrNamesWhatIsMissing) {
  testing::TempDir shared("plots_cmp_shared"), poly("plots_cmp_poly"), out("plots_cmp_out");
  testing::WriteFile(shared / "log.csv", kLog);
  auto r = RunCommand(Cli() + " plot --compare " + shared.str() + "," + poly.str() + " --out " + (out / "cmp.png"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(poly.str() + " has no log.csv"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "cmp.png"));
  testing::WriteFile(poly / "log.csv", "update,frames,episodes,mean_success,success_GoToObj,episodes_GoToObj\n"
                                      "1,2560,3,0.1,0.1,3\n2,5120,6,0.9,0.9,6\n3,7680,9,1,1,9\n");
  r = RunCommand(Cli() + " plot --compare " + shared.str() + "," + poly.str() + " --out " + (out / "cmp.png") +
                 " --width 640 --height 400");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("wrote " + (out / "cmp.png")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("GoToObj"), std::string::npos) << r.output;  // the final-success table
  EXPECT_NE(r.output.find("1.000"), std::string::npos) << r.output;    // poly's last row
  const envs::RgbImage img = envs::ReadPng(out / "cmp.png");
  EXPECT_EQ(img.width, 640);
  EXPECT_GT(CountColour(img, {0, 0, img.width, img.height}, CurveColor(0)), 0);
  EXPECT_GT(CountColour(img, {0, 0, img.width, img.height}, CurveColor(1)), 0);
  r = RunCommand(Cli() + " plot --compare both=" + shared.str() + "+" + poly.str() + " --out " + (out / "avg.png"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("both (2 runs)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("0.875"), std::string::npos) << r.output;  // (0.75 + 1) / 2
  EXPECT_TRUE(fs::exists(out / "avg.png"));
  // Sample efficiency, smoothed over 2 rows: shared's GoToObj reaches 0.85 at its last row (15 of
  // its episodes), poly's at its last (9); shared's GoToLocal stays at 0.5 and its mean peaks at
  // 0.7; poly's mean reaches at its last row (9 episodes in all).
  r = RunCommand(Cli() + " plot --compare " + shared.str() + "," + poly.str() + " --out " + (out / "cmp.png") +
                 " --window 2 --threshold 0.85");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string header = "training episodes until the success, smoothed over 2 log rows (centred), reaches 0.85";
  ASSERT_NE(r.output.find(header), std::string::npos) << r.output;
  const auto row = [](const std::string& output, const std::string& level) {  // the cells after `level`
    const size_t at = output.find("\n" + level + " ", output.find("training episodes until"));
    if (at == std::string::npos) return std::string("(no row)");
    const size_t end = output.find('\n', at + 1);
    std::istringstream in(output.substr(at + 1 + level.size(), end - at - 1 - level.size()));
    std::string cell, cells;
    while (in >> cell) cells += (cells.empty() ? "" : " ") + cell;
    return cells;
  };
  EXPECT_EQ(row(r.output, "GoToObj"), "15 9") << r.output;
  EXPECT_EQ(row(r.output, "GoToLocal"), "- (max 0.50) -") << r.output;
  EXPECT_EQ(row(r.output, "all"), "- (max 0.70) 9") << r.output;
  r = RunCommand(Cli() + " plot --compare both=" + shared.str() + "+" + poly.str() + " --out " + (out / "avg.png") +
                 " --window 2 --threshold 0.85");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(row(r.output, "GoToObj"), "12") << r.output;  // (15 + 9) / 2
  EXPECT_EQ(row(r.output, "level"), "both (2 runs)") << r.output;
  EXPECT_EQ(row(r.output, "all"), "9 (1/2)") << r.output;
  // At one frame budget: poly's table and its "all" row stop at its second row (5120 frames).
  r = RunCommand(Cli() + " plot --compare " + shared.str() + "," + poly.str() + " --out " + (out / "cmp.png") +
                 " --window 2 --threshold 0.85 --max-frames 5120");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(row(r.output, "all"), "- (max 0.10) - (max 0.50)") << r.output;
  EXPECT_NE(r.output.find("0.900"), std::string::npos) << r.output;
  r = RunCommand(Cli() + " plot --compare " + shared.str() + " --out " + (out / "cmp.png") + " --max-frames 100");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("has no row within --max-frames"), std::string::npos) << r.output;
  r = RunCommand(Cli() + " plot --compare " + shared.str() + " --out " + (out / "cmp.png") + " --threshold 0");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("--threshold"), std::string::npos) << r.output;
  // Two bare directories of the same name stay apart, labelled by their paths.
  testing::TempDir other("plots_cmp_other");
  fs::create_directories(other / fs::path(shared.str()).filename().string());
  const std::string twin = other / fs::path(shared.str()).filename().string();
  testing::WriteFile(twin + "/log.csv", kLog);
  r = RunCommand(Cli() + " plot --compare " + shared.str() + "," + twin + " --out " + (out / "twins.png"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("(2 runs)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(twin), std::string::npos) << r.output;
  r = RunCommand(Cli() + " plot --compare both=" + shared.str() + "+ --out " + (out / "bad.png"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("must be DIR or LABEL=DIR1+DIR2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "bad.png"));
  r = RunCommand(Cli() + " plot --compare " + shared.str() + "," + poly.str() + " --out " + (out / "cmp.png") +
                 " --last 0");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("--last"), std::string::npos) << r.output;
  r = RunCommand(Cli() + " plot --run " + shared.str() + " --compare " + poly.str());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("either --run DIR or --compare"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace skillgrid::viz
