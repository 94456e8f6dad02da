// Learning-curve charts and a run's plots/ folder, drawn with the canvas primitives.
#include "viz/plots.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "viz/heatmap.h"
#include "viz/run_dir.h"

namespace skillgrid::viz {
namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> SplitFields(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    out.push_back(Trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// A field quoted for an error message: at most 24 characters, non-printables as '?'.
std::string Quote(const std::string& s) {
  std::string q = s.substr(0, 24);
  for (char& c : q) {
    if (c < 32 || c > 126) c = '?';
  }
  return "'" + q + (s.size() > 24 ? "...'" : "'");
}

// Parses a whole field as a number; "" is NaN. Returns false for anything else.
bool ParseNumber(const std::string& field, double* out) {
  if (field.empty()) {
    *out = kNaN;
    return true;
  }
  const char* begin = field.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  if (end == begin || *end != '\0') return false;
  *out = v;
  return true;
}

bool IsColumnName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c <= 32 || c > 126 || c == '"' || c == '\'') return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Drawing helpers

// Fills a size x size square centred on (x, y), clipped to `clip`.
void Dot(envs::RgbImage* img, const Rect& clip, int x, int y, int size, Rgb c) {
  const int x0 = std::max(clip.x, x - (size - 1) / 2);
  const int y0 = std::max(clip.y, y - (size - 1) / 2);
  const int x1 = std::min(clip.x + clip.w, x - (size - 1) / 2 + size);
  const int y1 = std::min(clip.y + clip.h, y - (size - 1) / 2 + size);
  if (x1 > x0 && y1 > y0) FillRect(img, {x0, y0, x1 - x0, y1 - y0}, c);
}

// A straight segment `thickness` pixels wide (Bresenham with a square pen), clipped to `clip`.
void Segment(envs::RgbImage* img, const Rect& clip, int x0, int y0, int x1, int y1, int thickness, Rgb c) {
  const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  while (true) {
    Dot(img, clip, x0, y0, thickness, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

// Draws one curve: segments between consecutive finite points; NaN breaks the line.
void DrawCurve(envs::RgbImage* img, const CurveLayout& L, const std::vector<double>& x, const std::vector<double>& y,
               int thickness, bool step, bool markers, Rgb c) {
  const size_t n = std::min(x.size(), y.size());
  auto ok = [&](size_t i) { return i < n && std::isfinite(x[i]) && std::isfinite(y[i]); };
  for (size_t i = 0; i < n; ++i) {
    if (!ok(i)) continue;
    const int px = L.XPixel(x[i]), py = L.YPixel(y[i]);
    const bool has_prev = i > 0 && ok(i - 1);
    if (has_prev) {
      const int qx = L.XPixel(x[i - 1]), qy = L.YPixel(y[i - 1]);
      if (step) {
        Segment(img, L.plot, qx, qy, px, qy, thickness, c);
        Segment(img, L.plot, px, qy, px, py, thickness, c);
      } else {
        Segment(img, L.plot, qx, qy, px, py, thickness, c);
      }
    } else if (!ok(i + 1)) {
      Dot(img, L.plot, px, py, thickness + 2, c);  // a lone point
    }
    if (markers) Dot(img, L.plot, px, py, thickness + 4, c);
  }
}

// A "nice" tick step (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks.
double NiceStep(double range, int target) {
  const double raw = range / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  double nice = 10.0;
  for (double m : {1.0, 2.0, 2.5, 5.0}) {
    if (norm <= m + 1e-9) {
      nice = m;
      break;
    }
  }
  return nice * mag;
}

// A tick label: 0, 0.25, 250k, 1.5M, ... (as many decimals as the step needs, trailing zeros cut).
std::string TickLabel(double v, double step, double largest) {
  double unit = 1.0;
  const char* suffix = "";
  if (largest >= 1e9) {
    unit = 1e9;
    suffix = "G";
  } else if (largest >= 1e6) {
    unit = 1e6;
    suffix = "M";
  } else if (largest >= 1e4) {
    unit = 1e3;
    suffix = "k";
  }
  int decimals = 0;
  for (double s = step / unit; decimals < 6 && std::fabs(s - std::round(s)) > 1e-6; s *= 10.0) ++decimals;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v / unit);
  std::string t = buf;
  if (t.find('.') != std::string::npos) {
    while (t.back() == '0') t.pop_back();
    if (t.back() == '.') t.pop_back();
  }
  if (t == "-0") t = "0";
  return t == "0" ? t : t + suffix;
}

std::vector<double> Ticks(double lo, double hi, double step) {
  std::vector<double> out;
  const double first = std::ceil(lo / step - 1e-9) * step;
  for (double v = first; v <= hi + step * 1e-6; v += step) out.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return out;
}

std::string RunName(const std::string& run_dir) {
  fs::path p = fs::path(run_dir).lexically_normal();
  if (p.filename().empty() || p.filename() == ".") p = fs::absolute(p).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// The last finite value of column `name`, or NaN.
double LastValue(const CsvTable& t, const std::string& name) {
  const int c = t.Find(name);
  if (c < 0) return kNaN;
  for (auto it = t.columns[c].rbegin(); it != t.columns[c].rend(); ++it) {
    if (std::isfinite(*it)) return *it;
  }
  return kNaN;
}

std::string Integer(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CSV

int CsvTable::Find(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

CsvTable ParseCsvTable(const std::string& text, const std::string& source) {
  CsvTable t;
  t.source = source;
  size_t pos = 0;
  int line_no = 0;
  bool have_header = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const bool finished = nl != std::string::npos;
    if (!finished) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (Trim(line).empty()) continue;
    std::vector<std::string> fields = SplitFields(line);
    if (!have_header) {
      double v;
      if (ParseNumber(fields[0], &v) && !fields[0].empty()) {
        throw std::runtime_error(source + ": malformed header: line " + std::to_string(line_no) +
                                 " starts with the number " + Quote(fields[0]) + " (expected column names)");
      }
      for (size_t i = 0; i < fields.size(); ++i) {
        if (!IsColumnName(fields[i])) {
          throw std::runtime_error(source + ": malformed header: column " + std::to_string(i + 1) + " " +
                                   Quote(fields[i]) + " is not a column name");
        }
        for (size_t j = 0; j < i; ++j) {
          if (fields[j] == fields[i]) {
            throw std::runtime_error(source + ": malformed header: column " + Quote(fields[i]) + " appears twice");
          }
        }
      }
      t.names = fields;
      t.columns.assign(fields.size(), {});
      have_header = true;
      continue;
    }
    if (fields.size() != t.names.size()) {
      ++t.skipped_rows;
      continue;
    }
    std::vector<double> row(fields.size());
    bool bad = false;
    for (size_t i = 0; i < fields.size() && !bad; ++i) {
      if (ParseNumber(fields[i], &row[i])) continue;
      if (!finished) {
        bad = true;  // a row still being written
        break;
      }
      throw std::runtime_error(source + ": line " + std::to_string(line_no) + ", column " + Quote(t.names[i]) + ": " +
                               Quote(fields[i]) + " is not a number");
    }
    if (bad) {
      ++t.skipped_rows;
      continue;
    }
    for (size_t i = 0; i < row.size(); ++i) t.columns[i].push_back(row[i]);
  }
  if (!have_header) throw std::runtime_error(source + ": empty file (no header line)");
  return t;
}

CsvTable ReadCsvTable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path + ": read error");
  return ParseCsvTable(ss.str(), path);
}

CsvTable RowsUpToFrames(const CsvTable& table, double max_frames) {
  const int frames = table.Find("frames");
  if (frames < 0) throw std::runtime_error(table.source + ": no frames column");
  CsvTable out = table;
  for (auto& column : out.columns) column.clear();
  for (int row = 0; row < table.rows(); ++row) {
    if (!(table.columns[frames][row] <= max_frames)) continue;
    for (size_t c = 0; c < table.columns.size(); ++c) out.columns[c].push_back(table.columns[c][row]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Curves

Rgb CurveColor(int i) {
  static constexpr Rgb kTableau[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};
  if (i >= 0 && i < 10) return kTableau[i];
  // Further colours: golden-angle hues at two saturation/value levels (HSV -> RGB).
  const int k = std::max(0, i - 10);
  const double h = std::fmod(0.07 + k * 0.618033988749895, 1.0) * 6.0;
  const double s = (k % 2 == 0) ? 0.85 : 0.55, v = (k % 2 == 0) ? 0.75 : 0.9;
  const int sector = static_cast<int>(h) % 6;
  const double f = h - std::floor(h);
  const double p = v * (1 - s), q = v * (1 - s * f), u = v * (1 - s * (1 - f));
  double r = v, g = u, b = p;
  switch (sector) {
    case 0: r = v, g = u, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = u; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = u, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
  }
  auto byte = [](double x) { return static_cast<uint8_t>(std::lround(std::clamp(x, 0.0, 1.0) * 255.0)); };
  Rgb c{byte(r), byte(g), byte(b)};
  // Never collide with the chart's own colours or the first ten.
  for (const Rgb& used : kTableau) {
    if (c == used) c.b = static_cast<uint8_t>(c.b ^ 1);
  }
  if (c == chart::kBackground || c == chart::kGrid || c == chart::kAxis || c == chart::kText || c == chart::kMean) {
    c.r = static_cast<uint8_t>(c.r ^ 1);
  }
  return c;
}

LearningCurves CurvesFromTable(const CsvTable& table, const std::string& x_column, const std::string& prefix,
                               const std::string& mean_column) {
  const int xc = table.Find(x_column);
  if (xc < 0) throw std::runtime_error(table.source + ": no '" + x_column + "' column in the header");
  LearningCurves c;
  c.x_label = x_column;
  c.x = table.columns[xc];
  // eval.csv of a run with --eval-unseen: its held-out levels' columns follow this one.
  const int held_out_from = table.Find("mean_unseen_success");
  for (size_t i = 0; i < table.names.size(); ++i) {
    if (table.names[i].rfind(prefix, 0) == 0 && table.names[i].size() > prefix.size()) {
      const bool held_out = held_out_from >= 0 && static_cast<int>(i) > held_out_from;
      c.levels.push_back({table.names[i].substr(prefix.size()) + (held_out ? " (held out)" : ""), table.columns[i]});
    }
  }
  if (c.levels.empty()) throw std::runtime_error(table.source + ": no '" + prefix + "<level>' columns in the header");
  const int mc = table.Find(mean_column);
  if (mc >= 0) c.mean = table.columns[mc];
  return c;
}

LearningCurves CompareCurves(const std::vector<NamedTable>& runs, const std::string& x_column) {
  LearningCurves c;
  c.x_label = x_column;
  std::vector<std::pair<std::vector<double>, std::vector<double>>> points;  // per run: finite (x, y)
  for (const auto& run : runs) {
    const int xc = run.table.Find(x_column), mc = run.table.Find("mean_success");
    if (xc < 0) throw std::runtime_error(run.table.source + ": no '" + x_column + "' column in the header");
    if (mc < 0) throw std::runtime_error(run.table.source + ": no 'mean_success' column in the header");
    std::vector<double> xs, ys;
    for (size_t i = 0; i < run.table.columns[xc].size(); ++i) {
      const double x = run.table.columns[xc][i], y = run.table.columns[mc][i];
      if (std::isfinite(x) && std::isfinite(y) && (xs.empty() || x >= xs.back())) {
        xs.push_back(x);
        ys.push_back(y);
      }
    }
    c.x.insert(c.x.end(), xs.begin(), xs.end());
    points.emplace_back(std::move(xs), std::move(ys));
  }
  std::sort(c.x.begin(), c.x.end());
  c.x.erase(std::unique(c.x.begin(), c.x.end()), c.x.end());
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto& [xs, ys] = points[r];
    CurveSeries series{runs[r].name, std::vector<double>(c.x.size(), std::nan(""))};
    for (size_t i = 0; i < c.x.size(); ++i) {
      const double x = c.x[i];
      if (xs.empty() || x < xs.front() || x > xs.back()) continue;
      const size_t hi = static_cast<size_t>(std::lower_bound(xs.begin(), xs.end(), x) - xs.begin());
      if (xs[hi] == x) {
        series.y[i] = ys[hi];
      } else {  // xs[hi - 1] < x < xs[hi]
        const double t = (x - xs[hi - 1]) / (xs[hi] - xs[hi - 1]);
        series.y[i] = ys[hi - 1] + t * (ys[hi] - ys[hi - 1]);
      }
    }
    c.levels.push_back(std::move(series));
  }
  return c;
}

namespace {

// Mean of the finite values in [first, last); NaN when there are none.
template <typename It>
double MeanOfFinite(It first, It last) {
  double sum = 0.0;
  int count = 0;
  for (; first != last; ++first) {
    if (std::isfinite(*first)) {
      sum += *first;
      ++count;
    }
  }
  return count > 0 ? sum / count : std::nan("");
}

// Groups of equal labels: each distinct label (first appearance first) with its indices.
std::vector<std::pair<std::string, std::vector<size_t>>> GroupByLabel(const std::vector<std::string>& labels) {
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  for (size_t i = 0; i < labels.size(); ++i) {
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == labels[i]; });
    if (it == groups.end()) {
      groups.push_back({labels[i], {i}});
    } else {
      it->second.push_back(i);
    }
  }
  return groups;
}

// The short names of the runs' "success_<level>" columns: their union, in the order first seen.
std::vector<std::string> SuccessLevels(const std::vector<NamedTable>& runs) {
  const std::string prefix = "success_";
  std::vector<std::string> levels;
  for (const auto& run : runs) {
    for (const auto& name : run.table.names) {
      if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) continue;
      const std::string level = name.substr(prefix.size());
      if (std::find(levels.begin(), levels.end(), level) == levels.end()) levels.push_back(level);
    }
  }
  return levels;
}

}  // namespace

LearningCurves AverageSameLabel(const LearningCurves& curves) {
  LearningCurves out = curves;
  out.levels.clear();
  std::vector<std::string> labels;
  for (const auto& series : curves.levels) labels.push_back(series.label);
  for (const auto& [label, members] : GroupByLabel(labels)) {
    CurveSeries merged{label, std::vector<double>(curves.x.size(), 0.0)};
    for (size_t i = 0; i < curves.x.size(); ++i) {
      for (size_t m : members) merged.y[i] += curves.levels[m].y[i];  // NaN if any member lacks a value
      merged.y[i] /= static_cast<double>(members.size());
    }
    out.levels.push_back(std::move(merged));
  }
  return out;
}

FinalSuccessTable FinalSuccess(const std::vector<NamedTable>& runs, int last_rows) {
  if (last_rows < 1) throw std::runtime_error("rows to average must be >= 1, got " + std::to_string(last_rows));
  FinalSuccessTable t;
  const std::string prefix = "success_";
  t.levels = SuccessLevels(runs);
  t.levels.push_back("mean");
  t.success.assign(t.levels.size(), std::vector<double>(runs.size(), std::nan("")));
  for (size_t r = 0; r < runs.size(); ++r) {
    const CsvTable& table = runs[r].table;
    t.runs.push_back(runs[r].name);
    for (size_t l = 0; l < t.levels.size(); ++l) {
      const bool mean_row = l + 1 == t.levels.size();
      const int c = table.Find(mean_row ? "mean_success" : prefix + t.levels[l]);
      if (c < 0) continue;
      const std::vector<double>& col = table.columns[static_cast<size_t>(c)];
      t.success[l][r] = MeanOfFinite(col.end() - std::min<ptrdiff_t>(last_rows, col.size()), col.end());
    }
    const int fc = table.Find("frames");
    t.frames.push_back(fc >= 0 && table.rows() > 0 ? table.columns[static_cast<size_t>(fc)].back() : std::nan(""));
  }
  return t;
}

std::string FormatFinalSuccess(const FinalSuccessTable& table) {
  size_t label_width = std::string("frames").size();
  for (const auto& level : table.levels) label_width = std::max(label_width, level.size());
  std::vector<size_t> widths;
  for (const auto& run : table.runs) widths.push_back(std::max<size_t>(run.size(), 10));
  std::ostringstream out;
  const auto cell = [&](size_t r, const std::string& text) {
    out << "  " << std::string(widths[r] - std::min(widths[r], text.size()), ' ') << text;
  };
  out << std::left << std::setw(static_cast<int>(label_width)) << "level" << std::right;
  for (size_t r = 0; r < table.runs.size(); ++r) cell(r, table.runs[r]);
  out << "\n";
  for (size_t l = 0; l < table.levels.size(); ++l) {
    out << std::left << std::setw(static_cast<int>(label_width)) << table.levels[l] << std::right;
    for (size_t r = 0; r < table.runs.size(); ++r) {
      const double v = table.success[l][r];
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.3f", v);
      cell(r, std::isfinite(v) ? buf : "-");
    }
    out << "\n";
  }
  out << std::left << std::setw(static_cast<int>(label_width)) << "frames" << std::right;
  for (size_t r = 0; r < table.runs.size(); ++r) {
    const double f = table.frames[r];
    cell(r, std::isfinite(f) ? std::to_string(static_cast<long long>(f)) : "-");
  }
  out << "\n";
  return out.str();
}

FinalSuccessTable AverageSameLabel(const FinalSuccessTable& table, std::vector<int>* members) {
  FinalSuccessTable out;
  out.levels = table.levels;
  out.success.assign(table.levels.size(), {});
  if (members != nullptr) members->clear();
  for (const auto& [name, runs] : GroupByLabel(table.runs)) {
    out.runs.push_back(name);
    if (members != nullptr) members->push_back(static_cast<int>(runs.size()));
    for (size_t l = 0; l < table.levels.size(); ++l) {
      std::vector<double> values;
      for (size_t r : runs) values.push_back(table.success[l][r]);
      out.success[l].push_back(MeanOfFinite(values.begin(), values.end()));
    }
    double frames = 0.0;
    for (size_t r : runs) frames += table.frames[r];
    out.frames.push_back(frames / static_cast<double>(runs.size()));
  }
  return out;
}

std::vector<double> CentredMovingAverage(const std::vector<double>& values, int window) {
  if (window < 1) throw std::runtime_error("smoothing window must be >= 1 row, got " + std::to_string(window));
  const size_t n = values.size(), w = static_cast<size_t>(window);
  std::vector<double> out(n, std::nan(""));
  // Each window summed afresh (rows x window adds: ~1M for a 20M-frame log), so no running-sum
  // drift can move a value across the threshold.
  for (size_t start = 0; start + w <= n; ++start) {
    double sum = 0.0;
    for (size_t i = start; i < start + w; ++i) sum += values[i];  // a NaN makes the mean NaN
    out[start + w / 2] = sum / static_cast<double>(w);
  }
  return out;
}

EpisodesToReachTable EpisodesToReach(const std::vector<NamedTable>& runs, const ReachOptions& options) {
  if (!(options.threshold > 0.0 && options.threshold <= 1.0)) {
    throw std::runtime_error("success threshold must be in (0, 1], got " + std::to_string(options.threshold));
  }
  if (options.window < 1) throw std::runtime_error("smoothing window must be >= 1 row, got " + std::to_string(options.window));
  EpisodesToReachTable t;
  t.levels = SuccessLevels(runs);
  t.levels.push_back("all");
  t.episodes.assign(t.levels.size(), std::vector<double>(runs.size(), std::nan("")));
  t.reached.assign(t.levels.size(), std::vector<int>(runs.size(), 0));
  t.best.assign(t.levels.size(), std::vector<double>(runs.size(), std::nan("")));
  for (size_t r = 0; r < runs.size(); ++r) {
    const CsvTable& table = runs[r].table;
    t.runs.push_back(runs[r].name);
    t.members.push_back(1);
    for (size_t l = 0; l < t.levels.size(); ++l) {
      const bool all = l + 1 == t.levels.size();
      const int sc = table.Find(all ? "mean_success" : "success_" + t.levels[l]);
      const int ec = table.Find(all ? "episodes" : "episodes_" + t.levels[l]);
      if (sc < 0) continue;
      const std::vector<double> smooth = CentredMovingAverage(table.columns[static_cast<size_t>(sc)], options.window);
      for (size_t i = 0; i < smooth.size(); ++i) {
        if (!std::isfinite(smooth[i])) continue;
        if (!(t.best[l][r] >= smooth[i])) t.best[l][r] = smooth[i];  // best starts NaN, which compares false
        if (smooth[i] >= options.threshold && t.reached[l][r] == 0) {
          t.reached[l][r] = 1;
          if (ec >= 0) t.episodes[l][r] = table.columns[static_cast<size_t>(ec)][i];
        }
      }
    }
  }
  return t;
}

EpisodesToReachTable AverageSameLabel(const EpisodesToReachTable& table) {
  EpisodesToReachTable out;
  out.levels = table.levels;
  out.episodes.assign(table.levels.size(), {});
  out.reached.assign(table.levels.size(), {});
  out.best.assign(table.levels.size(), {});
  for (const auto& [name, runs] : GroupByLabel(table.runs)) {
    out.runs.push_back(name);
    int members = 0;
    for (size_t r : runs) members += table.members[r];
    out.members.push_back(members);
    for (size_t l = 0; l < table.levels.size(); ++l) {
      // A column that is already a mean counts with the weight of the runs that reached in it.
      double sum = 0.0, weight = 0.0, best = std::nan("");
      int reached = 0;
      for (size_t r : runs) {
        reached += table.reached[l][r];
        if (table.reached[l][r] > 0 && std::isfinite(table.episodes[l][r])) {
          sum += table.episodes[l][r] * table.reached[l][r];
          weight += table.reached[l][r];
        }
        const double b = table.best[l][r];
        if (std::isfinite(b) && !(best >= b)) best = b;  // best starts NaN, which compares false
      }
      out.episodes[l].push_back(weight > 0 ? sum / weight : std::nan(""));
      out.reached[l].push_back(reached);
      out.best[l].push_back(best);
    }
  }
  return out;
}

namespace {

// 1234567.4 -> "1,234,567".
std::string WithThousands(double value) {
  std::string digits = std::to_string(std::llround(value));
  const size_t first = digits[0] == '-' ? 1 : 0;
  for (ptrdiff_t i = static_cast<ptrdiff_t>(digits.size()) - 3; i > static_cast<ptrdiff_t>(first); i -= 3) {
    digits.insert(static_cast<size_t>(i), ",");
  }
  return digits;
}

}  // namespace

std::string FormatEpisodesToReach(const EpisodesToReachTable& table) {
  std::vector<std::vector<std::string>> cells(table.levels.size());
  for (size_t l = 0; l < table.levels.size(); ++l) {
    for (size_t r = 0; r < table.runs.size(); ++r) {
      const int reached = table.reached[l][r], members = table.members[r];
      std::string text;
      if (reached == 0) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "- (max %.2f)", table.best[l][r]);
        text = std::isfinite(table.best[l][r]) ? buf : "-";
      } else {
        text = std::isfinite(table.episodes[l][r]) ? WithThousands(table.episodes[l][r]) : "?";
        if (reached < members) text += " (" + std::to_string(reached) + "/" + std::to_string(members) + ")";
      }
      cells[l].push_back(text);
    }
  }
  size_t label_width = std::string("level").size();
  for (const auto& level : table.levels) label_width = std::max(label_width, level.size());
  std::vector<size_t> widths;
  for (size_t r = 0; r < table.runs.size(); ++r) {
    size_t w = std::max<size_t>(table.runs[r].size(), 10);
    for (const auto& row : cells) w = std::max(w, row[r].size());
    widths.push_back(w);
  }
  std::ostringstream out;
  const auto row = [&](const std::string& label, const std::vector<std::string>& texts) {
    out << std::left << std::setw(static_cast<int>(label_width)) << label << std::right;
    for (size_t r = 0; r < texts.size(); ++r) out << "  " << std::setw(static_cast<int>(widths[r])) << texts[r];
    out << "\n";
  };
  row("level", table.runs);
  for (size_t l = 0; l < table.levels.size(); ++l) row(table.levels[l], cells[l]);
  return out.str();
}

int CurveLayout::XPixel(double x) const {
  const double t = x_max > x_min ? (x - x_min) / (x_max - x_min) : 0.0;
  return data.x + static_cast<int>(std::lround(std::clamp(t, 0.0, 1.0) * (data.w - 1)));
}

int CurveLayout::YPixel(double y) const {
  const double t = y_max > y_min ? (y - y_min) / (y_max - y_min) : 0.0;
  return data.y + data.h - 1 - static_cast<int>(std::lround(std::clamp(t, 0.0, 1.0) * (data.h - 1)));
}

envs::RgbImage RenderLearningCurves(const LearningCurves& curves, const CurveStyle& style, CurveLayout* layout) {
  const int W = std::max(320, style.width), H = std::max(200, style.height);
  envs::RgbImage img;
  Clear(&img, W, H, chart::kBackground);
  CurveLayout L;
  L.y_min = style.y_min;
  L.y_max = style.y_max > style.y_min ? style.y_max : style.y_min + 1.0;

  // x range: from 0 (or the smallest x if negative) to the largest finite x.
  bool any_x = false;
  double lo = 0.0, hi = 0.0;
  for (double x : curves.x) {
    if (!std::isfinite(x)) continue;
    lo = any_x ? std::min(lo, x) : std::min(0.0, x);
    hi = any_x ? std::max(hi, x) : x;
    any_x = true;
  }
  if (!(hi > lo)) hi = lo + 1.0;
  L.x_min = lo;
  L.x_max = hi;
  const double x_step = NiceStep(hi - lo, 6);
  const double y_step = NiceStep(L.y_max - L.y_min, 4);
  const std::vector<double> xticks = Ticks(lo, hi, x_step);
  const std::vector<double> yticks = Ticks(L.y_min, L.y_max, y_step);
  const double x_largest = std::max(std::fabs(lo), std::fabs(hi));
  const double y_largest = std::max(std::fabs(L.y_min), std::fabs(L.y_max));

  // Margins: title on top, y tick labels left, x tick labels and axis label below, legend right.
  int title_scale = 2;
  std::string title = style.title;
  if (!title.empty() && TextWidth(title, 2) > W - 24) {
    title_scale = 1;
    title = FitText(title, W - 24, 1);
  }
  // The title band is always reserved, so the plot area depends only on the size and the data.
  const int top = 14 + kGlyphHeight * 2 + 10 + kLineHeight + 4;
  int ytick_w = 0;
  for (double v : yticks) ytick_w = std::max(ytick_w, TextWidth(TickLabel(v, y_step, y_largest)));
  const int left = 16 + ytick_w + 8;
  const int bottom = 8 + kLineHeight + 6 + kLineHeight + 8;
  int legend_text_w = TextWidth("mean");
  for (const auto& s : curves.levels) legend_text_w = std::max(legend_text_w, TextWidth(s.label));
  const int legend_w = std::min(8 + 18 + 6 + legend_text_w + 8, W / 3);
  L.plot = {left, top, std::max(40, W - left - 16 - legend_w - 12), std::max(40, H - top - bottom)};
  const int inset = std::max({3, style.line_px, style.mean_px});
  L.data = {L.plot.x + inset, L.plot.y + inset, L.plot.w - 2 * inset, L.plot.h - 2 * inset};
  const int entries = static_cast<int>(curves.levels.size()) + (curves.mean.empty() ? 0 : 1);
  L.legend = {L.plot.x + L.plot.w + 16, L.plot.y, legend_w, 8 + entries * 14 + 4};

  // Title and y label.
  if (!title.empty()) DrawText(&img, 12, 12, title, chart::kText, title_scale);
  DrawText(&img, std::max(4, L.plot.x - TextWidth(style.y_label) / 2), L.plot.y - kLineHeight - 4, style.y_label,
           chart::kText);

  // Grid, ticks and labels.
  for (double v : yticks) {
    const int y = L.YPixel(v);
    HLine(&img, L.plot.x, L.plot.x + L.plot.w - 1, y, chart::kGrid);
    HLine(&img, L.plot.x - 5, L.plot.x - 1, y, chart::kAxis);
    const std::string s = TickLabel(v, y_step, y_largest);
    DrawText(&img, L.plot.x - 8 - TextWidth(s), y - kGlyphHeight / 2, s, chart::kText);
  }
  int last_label_end = -1000;
  for (double v : xticks) {
    const int x = L.XPixel(v);
    VLine(&img, x, L.plot.y, L.plot.y + L.plot.h - 1, chart::kGrid);
    VLine(&img, x, L.plot.y + L.plot.h, L.plot.y + L.plot.h + 4, chart::kAxis);
    const std::string s = TickLabel(v, x_step, x_largest);
    const int tx = x - TextWidth(s) / 2;
    if (tx > last_label_end + 6) {
      DrawText(&img, tx, L.plot.y + L.plot.h + 8, s, chart::kText);
      last_label_end = tx + TextWidth(s);
    }
  }
  StrokeRect(&img, {L.plot.x - 1, L.plot.y - 1, L.plot.w + 2, L.plot.h + 2}, chart::kAxis);
  DrawText(&img, L.plot.x + (L.plot.w - TextWidth(curves.x_label)) / 2, L.plot.y + L.plot.h + 8 + kLineHeight + 6,
           curves.x_label, chart::kText);

  // Curves, then the mean on top.
  bool any_point = false;
  for (const auto& s : curves.levels) {
    for (size_t i = 0; i < s.y.size() && i < curves.x.size(); ++i) {
      any_point |= std::isfinite(s.y[i]) && std::isfinite(curves.x[i]);
    }
  }
  for (size_t i = 0; i < curves.levels.size(); ++i) {
    DrawCurve(&img, L, curves.x, curves.levels[i].y, std::max(1, style.line_px), style.step, style.markers,
              CurveColor(static_cast<int>(i)));
  }
  if (!curves.mean.empty()) {
    DrawCurve(&img, L, curves.x, curves.mean, std::max(1, style.mean_px), style.step, style.markers, chart::kMean);
  }
  if (!any_point) {
    const std::string msg = "no data yet";
    DrawText(&img, L.plot.cx() - TextWidth(msg, 2) / 2, L.plot.cy() - kGlyphHeight, msg, chart::kAxis, 2);
  }

  // Legend.
  StrokeRect(&img, L.legend, chart::kGrid);
  int y = L.legend.y + 8;
  auto entry = [&](const std::string& label, Rgb c, int thickness) {
    const int sx = L.legend.x + 8;
    FillRect(&img, {sx, y + kGlyphHeight / 2 - thickness / 2, 18, thickness}, c);
    DrawText(&img, sx + 24, y, FitText(label, L.legend.w - 8 - 24 - 4), chart::kText);
    y += 14;
  };
  for (size_t i = 0; i < curves.levels.size(); ++i) {
    entry(curves.levels[i].label, CurveColor(static_cast<int>(i)), std::max(2, style.line_px + 1));
  }
  if (!curves.mean.empty()) entry("mean", chart::kMean, std::max(3, style.mean_px));

  if (layout) *layout = L;
  return img;
}

// ---------------------------------------------------------------------------------------------
// Heatmaps and the run's plots/

envs::RgbImage RenderRoutingStack(const std::vector<const RoutingMatrix*>& matrices, int64_t frames) {
  if (matrices.empty()) throw std::runtime_error("the routing snapshot has no layers");
  std::vector<envs::RgbImage> parts;
  int w = 0, h = 0;
  for (const RoutingMatrix* m : matrices) {
    HeatmapStyle hs;
    hs.vmax = 0.0f;  // 0 .. the matrix's largest weight
    hs.title = "layer " + m->layer + "  head " + std::to_string(m->head + 1) + "/" + std::to_string(m->num_heads) +
               (frames >= 0 ? "  frames " + std::to_string(frames) : "");
    parts.push_back(RenderHeatmap(*m, hs));
    w = std::max(w, parts.back().width);
    h += parts.back().height;
  }
  envs::RgbImage out;
  Clear(&out, w, h, palette::kBackground);
  int y = 0;
  for (const auto& p : parts) {
    Blit(&out, p, 0, y);
    y += p.height;
  }
  return out;
}

envs::RgbImage RenderRoutingStack(const RoutingSnapshot& snap) {
  std::vector<const RoutingMatrix*> all;
  for (const auto& m : snap.matrices) all.push_back(&m);
  return RenderRoutingStack(all, snap.frames);
}

std::vector<std::string> RunPlots::written() const {
  std::vector<std::string> out;
  for (const std::string* p : {&learning_curves, &eval_curves, &skills_heatmap, &distill_curves}) {
    if (!p->empty()) out.push_back(*p);
  }
  return out;
}

RunPlots WriteRunPlots(const std::string& run_dir, const RunPlotOptions& options) {
  const fs::path dir(run_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw std::runtime_error("run directory '" + run_dir + "' does not exist");
  const fs::path log_path = dir / "log.csv";
  if (!fs::exists(log_path, ec)) {
    throw std::runtime_error(log_path.string() + " does not exist (not a training run directory?)");
  }
  const std::string name = RunName(run_dir);
  CurveStyle style;
  style.width = options.width;
  style.height = options.height;

  // Learning curves (required).
  const CsvTable log = ReadCsvTable(log_path.string());
  const LearningCurves curves = CurvesFromTable(log, options.x_column);
  const double last_update = LastValue(log, "update"), last_frames = LastValue(log, "frames");
  style.title = name + ": training success per level";
  if (std::isfinite(last_update)) {
    style.title += " (update " + Integer(last_update) +
                   (std::isfinite(last_frames) ? ", " + Integer(last_frames) + " frames)" : ")");
  }
  const fs::path plots = dir / "plots";
  fs::create_directories(plots, ec);
  if (ec) throw std::runtime_error("cannot create " + plots.string() + ": " + ec.message());
  RunPlots out;
  const std::string curves_path = (plots / "learning_curves.png").string();
  envs::WritePng(curves_path, RenderLearningCurves(curves, style));
  out.learning_curves = curves_path;

  // Distillation: tau^2 KL(teacher || student) per level, on an axis fitted to its largest value.
  if (std::any_of(log.names.begin(), log.names.end(), [](const std::string& n) { return n.rfind("kl_", 0) == 0; })) {
    try {
      const LearningCurves kl = CurvesFromTable(log, options.x_column, "kl_", "distill_kl");
      double top = 0.0;
      for (const auto& series : kl.levels) {
        for (double v : series.y) {
          if (std::isfinite(v)) top = std::max(top, v);
        }
      }
      CurveStyle ks = style;
      ks.title = name + ": distillation KL per level";
      ks.y_label = "tau^2 KL(teacher || student)";
      ks.y_max = top > 0.0 ? std::ceil(top * 10.0) / 10.0 : 1.0;
      const std::string path = (plots / "distill_curves.png").string();
      envs::WritePng(path, RenderLearningCurves(kl, ks));
      out.distill_curves = path;
    } catch (const std::exception& e) {
      out.errors.push_back(e.what());
    }
  }

  // Evaluation curves (when eval.csv has rows).
  const fs::path eval_path = dir / "eval.csv";
  if (fs::exists(eval_path, ec)) {
    try {
      const CsvTable eval = ReadCsvTable(eval_path.string());
      if (eval.rows() > 0) {
        CurveStyle es = style;
        es.markers = true;
        es.title = name + ": evaluation success per level (" + std::to_string(eval.rows()) + " evaluation" +
                   (eval.rows() == 1 ? "" : "s") + ")";
        const std::string path = (plots / "eval_curves.png").string();
        envs::WritePng(path, RenderLearningCurves(CurvesFromTable(eval, options.x_column), es));
        out.eval_curves = path;
      }
    } catch (const std::exception& e) {
      out.errors.push_back(e.what());
    }
  }

  // Routing heatmaps of the latest snapshot (runs with router none have no skills.json).
  const fs::path skills_path = dir / "skills.json";
  if (fs::exists(skills_path, ec)) {
    try {
      std::vector<std::string> levels;
      if (fs::exists(dir / "config.json", ec)) levels = ReadRunDir(run_dir).levels;
      const RoutingSnapshot snap = LoadLatestRoutingSnapshot(skills_path.string(), levels);
      const std::string path = (plots / "skills_heatmap.png").string();
      envs::WritePng(path, RenderRoutingStack(snap));
      out.skills_heatmap = path;
    } catch (const std::exception& e) {
      const std::string what = e.what();
      out.errors.push_back(what.find(skills_path.string()) == std::string::npos ? skills_path.string() + ": " + what
                                                                                : what);
    }
  }
  return out;
}

}  // namespace skillgrid::viz
