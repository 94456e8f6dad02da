#include "envs/render.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace skillgrid::envs {
namespace {

constexpr int kSubdivs = 3;  // Minigrid's render_tile supersampling factor
constexpr int kMaxTilePx = 256;

constexpr uint8_t kColorRgb[kNumColors][3] = {
    {255, 0, 0},      // red
    {0, 255, 0},      // green
    {0, 0, 255},      // blue
    {112, 39, 195},   // purple
    {255, 255, 0},    // yellow
    {100, 100, 100},  // grey
};

/// A colour as Minigrid holds it before assignment into a uint8 image (may be fractional).
struct Rgbf {
  double r, g, b;
};

Rgbf ColorOf(Color c, double scale = 1.0) {
  const uint8_t* p = kColorRgb[static_cast<int>(c) % kNumColors];
  return {p[0] * scale, p[1] * scale, p[2] * scale};
}

/// The supersampled tile being drawn: n x n RGB.
class Canvas {
 public:
  explicit Canvas(int n) : n_(n), px_(static_cast<size_t>(n) * n * 3, 0) {}
  int n() const { return n_; }
  uint8_t* data() { return px_.data(); }

  /// Minigrid's fill_coords: every pixel whose centre, in tile units, satisfies fn gets colour.
  /// Fractional colours truncate as numpy's float -> uint8 assignment does.
  template <class Fn>
  void Fill(Fn fn, Rgbf color) {
    const uint8_t c[3] = {static_cast<uint8_t>(color.r), static_cast<uint8_t>(color.g),
                          static_cast<uint8_t>(color.b)};
    for (int y = 0; y < n_; ++y) {
      const double yf = (y + 0.5) / n_;
      uint8_t* row = px_.data() + static_cast<size_t>(y) * n_ * 3;
      for (int x = 0; x < n_; ++x) {
        const double xf = (x + 0.5) / n_;
        if (fn(xf, yf)) std::memcpy(row + x * 3, c, 3);
      }
    }
  }

 private:
  int n_;
  std::vector<uint8_t> px_;
};

// Minigrid's shape tests (minigrid/utils/rendering.py), with its float32/float64 mix.

auto InRect(double xmin, double xmax, double ymin, double ymax) {
  return [=](double x, double y) { return x >= xmin && x <= xmax && y >= ymin && y <= ymax; };
}

auto InCircle(double cx, double cy, double r) {
  return [=](double x, double y) { return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r; };
}

auto InLine(double x0, double y0, double x1, double y1, double r) {
  const float p0x = static_cast<float>(x0), p0y = static_cast<float>(y0);
  float dx = static_cast<float>(x1) - p0x, dy = static_cast<float>(y1) - p0y;
  const float dist = std::sqrt(dx * dx + dy * dy);
  dx /= dist;
  dy /= dist;
  const double xmin = std::min(x0, x1) - r, xmax = std::max(x0, x1) + r;
  const double ymin = std::min(y0, y1) - r, ymax = std::max(y0, y1) + r;
  return [=](double x, double y) {
    if (x < xmin || x > xmax || y < ymin || y > ymax) return false;
    const double pqx = x - p0x, pqy = y - p0y;
    double a = pqx * dx + pqy * dy;
    a = std::clamp(a, 0.0, static_cast<double>(dist));
    const double px = p0x + a * dx, py = p0y + a * dy;
    const double qx = x - px, qy = y - py;
    return std::sqrt(qx * qx + qy * qy) <= r;
  };
}

auto InTriangle(double ax, double ay, double bx, double by, double cx, double cy) {
  const float a[2] = {static_cast<float>(ax), static_cast<float>(ay)};
  const float b[2] = {static_cast<float>(bx), static_cast<float>(by)};
  const float c[2] = {static_cast<float>(cx), static_cast<float>(cy)};
  const float v0x = c[0] - a[0], v0y = c[1] - a[1];
  const float v1x = b[0] - a[0], v1y = b[1] - a[1];
  const float dot00 = v0x * v0x + v0y * v0y;
  const float dot01 = v0x * v1x + v0y * v1y;
  const float dot11 = v1x * v1x + v1y * v1y;
  const float inv_denom = 1.0f / (dot00 * dot11 - dot01 * dot01);
  return [=](double x, double y) {
    const double v2x = x - a[0], v2y = y - a[1];
    const double dot02 = v0x * v2x + v0y * v2y;
    const double dot12 = v1x * v2x + v1y * v2y;
    const double u = (dot11 * dot02 - dot01 * dot12) * inv_denom;
    const double v = (dot00 * dot12 - dot01 * dot02) * inv_denom;
    return u >= 0 && v >= 0 && (u + v) < 1;
  };
}

/// Minigrid's rotate_fn: tests fn at the point rotated by -theta about (cx, cy).
template <class Fn>
auto Rotated(Fn fn, double cx, double cy, double theta) {
  const double cs = std::cos(-theta), sn = std::sin(-theta);
  return [=](double x, double y) {
    x -= cx;
    y -= cy;
    return fn(cx + x * cs - y * sn, cy + y * cs + x * sn);
  };
}

constexpr Rgbf kBlack{0, 0, 0};

/// WorldObj.render for each object type.
void DrawObject(Canvas& img, ObjectType type, Color color, uint8_t state) {
  switch (type) {
    case ObjectType::kWall:
    case ObjectType::kGoal:
      img.Fill(InRect(0, 1, 0, 1), ColorOf(color));
      break;
    case ObjectType::kFloor:
      img.Fill(InRect(0.031, 1, 0.031, 1), ColorOf(color, 0.5));
      break;
    case ObjectType::kLava: {
      img.Fill(InRect(0, 1, 0, 1), {255, 128, 0});
      for (int i = 0; i < 3; ++i) {
        const double ylo = 0.3 + 0.2 * i;
        const double yhi = 0.4 + 0.2 * i;
        img.Fill(InLine(0.1, ylo, 0.3, yhi, 0.03), kBlack);
        img.Fill(InLine(0.3, yhi, 0.5, ylo, 0.03), kBlack);
        img.Fill(InLine(0.5, ylo, 0.7, yhi, 0.03), kBlack);
        img.Fill(InLine(0.7, yhi, 0.9, ylo, 0.03), kBlack);
      }
      break;
    }
    case ObjectType::kDoor: {
      const Rgbf c = ColorOf(color);
      if (state == static_cast<uint8_t>(DoorState::kOpen)) {
        img.Fill(InRect(0.88, 1.00, 0.00, 1.00), c);
        img.Fill(InRect(0.92, 0.96, 0.04, 0.96), kBlack);
      } else if (state == static_cast<uint8_t>(DoorState::kLocked)) {
        img.Fill(InRect(0.00, 1.00, 0.00, 1.00), c);
        img.Fill(InRect(0.06, 0.94, 0.06, 0.94), ColorOf(color, 0.45));
        img.Fill(InRect(0.52, 0.75, 0.50, 0.56), c);  // key slot
      } else {
        img.Fill(InRect(0.00, 1.00, 0.00, 1.00), c);
        img.Fill(InRect(0.04, 0.96, 0.04, 0.96), kBlack);
        img.Fill(InRect(0.08, 0.92, 0.08, 0.92), c);
        img.Fill(InRect(0.12, 0.88, 0.12, 0.88), kBlack);
        img.Fill(InCircle(0.75, 0.50, 0.08), c);  // handle
      }
      break;
    }
    case ObjectType::kKey: {
      const Rgbf c = ColorOf(color);
      img.Fill(InRect(0.50, 0.63, 0.31, 0.88), c);  // shaft
      img.Fill(InRect(0.38, 0.50, 0.59, 0.66), c);  // teeth
      img.Fill(InRect(0.38, 0.50, 0.81, 0.88), c);
      img.Fill(InCircle(0.56, 0.28, 0.190), c);  // ring
      img.Fill(InCircle(0.56, 0.28, 0.064), kBlack);
      break;
    }
    case ObjectType::kBall:
      img.Fill(InCircle(0.5, 0.5, 0.31), ColorOf(color));
      break;
    case ObjectType::kBox: {
      const Rgbf c = ColorOf(color);
      img.Fill(InRect(0.12, 0.88, 0.12, 0.88), c);
      img.Fill(InRect(0.18, 0.82, 0.18, 0.82), kBlack);
      img.Fill(InRect(0.16, 0.84, 0.47, 0.53), c);  // slit
      break;
    }
    default:  // unseen, empty, agent: nothing
      break;
  }
}

/// Minigrid's render_tile, uncached: writes tile_px x tile_px RGB into `out` (packed rows).
void DrawTile(ObjectType type, Color color, uint8_t state, int agent_dir, bool highlight,
              int tile_px, uint8_t* out) {
  Canvas img(tile_px * kSubdivs);
  constexpr Rgbf kGridLine{100, 100, 100};
  img.Fill(InRect(0, 0.031, 0, 1), kGridLine);
  img.Fill(InRect(0, 1, 0, 0.031), kGridLine);
  DrawObject(img, type, color, state);
  if (agent_dir >= 0) {
    const double kPi = 3.14159265358979323846;
    img.Fill(
        Rotated(InTriangle(0.12, 0.19, 0.87, 0.50, 0.12, 0.81), 0.5, 0.5, 0.5 * kPi * agent_dir),
        {255, 0, 0});
  }
  const int n = img.n();
  uint8_t* p = img.data();
  if (highlight) {  // highlight_img: blend 30% towards white, truncated
    for (int i = 0; i < n * n * 3; ++i) {
      const double v = p[i] + 0.30 * (255 - p[i]);
      p[i] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
    }
  }
  // downsample: mean over x, then over y; the float result truncates into the uint8 image.
  for (int ty = 0; ty < tile_px; ++ty) {
    for (int tx = 0; tx < tile_px; ++tx) {
      for (int ch = 0; ch < 3; ++ch) {
        double row_means[kSubdivs];
        for (int sy = 0; sy < kSubdivs; ++sy) {
          const uint8_t* s = p + (static_cast<size_t>(ty * kSubdivs + sy) * n + tx * kSubdivs) * 3;
          row_means[sy] = (static_cast<double>(s[ch]) + s[3 + ch] + s[6 + ch]) / kSubdivs;
        }
        const double m = (row_means[0] + row_means[1] + row_means[2]) / kSubdivs;
        out[(static_cast<size_t>(ty) * tile_px + tx) * 3 + ch] = static_cast<uint8_t>(m);
      }
    }
  }
}

/// Per-thread cache of rendered tiles, keyed like Minigrid's tile_cache.
class TileCache {
 public:
  const uint8_t* Get(ObjectType type, Color color, uint8_t state, int agent_dir, bool highlight,
                     int tile_px) {
    color = static_cast<Color>(static_cast<int>(color) % kNumColors);
    const uint64_t key =
        (static_cast<uint64_t>(tile_px) << 16) | static_cast<uint64_t>(type) |
        (static_cast<uint64_t>(color) << 4) | (static_cast<uint64_t>(state & 3) << 7) |
        (static_cast<uint64_t>(agent_dir + 1) << 9) | (static_cast<uint64_t>(highlight) << 12);
    auto it = tiles_.find(key);
    if (it != tiles_.end()) return it->second.get();
    const size_t bytes = static_cast<size_t>(tile_px) * tile_px * 3;
    auto tile = std::make_unique<uint8_t[]>(bytes);
    DrawTile(type, color, state, agent_dir, highlight, tile_px, tile.get());
    bytes_ += bytes;
    return tiles_.emplace(key, std::move(tile)).first->second.get();
  }
  /// Drops everything once the cache grows large (call only between renders).
  void Trim() {
    if (bytes_ > (size_t{64} << 20)) {
      tiles_.clear();
      bytes_ = 0;
    }
  }

 private:
  std::unordered_map<uint64_t, std::unique_ptr<uint8_t[]>> tiles_;
  size_t bytes_ = 0;
};

TileCache& Cache() {
  thread_local TileCache cache;
  return cache;
}

/// Per-thread scratch buffers, so repeated renders do not allocate.
struct Scratch {
  std::vector<uint8_t> obs;
  std::unique_ptr<bool[]> visible;
  size_t visible_size = 0;
  std::vector<uint8_t> mask;

  bool* Visible(size_t n) {
    if (visible_size < n) {
      visible = std::make_unique<bool[]>(n);
      visible_size = n;
    }
    return visible.get();
  }
};

Scratch& GetScratch() {
  thread_local Scratch s;
  return s;
}

void CheckTilePx(int tile_px) {
  if (tile_px < 1 || tile_px > kMaxTilePx) {
    throw std::invalid_argument("tile_px must be in 1.." + std::to_string(kMaxTilePx) + ", got " +
                                std::to_string(tile_px));
  }
}

/// Copies a tile to (px, py) of an image `width` pixels wide.
inline void Blit(const uint8_t* tile, int tile_px, uint8_t* rgb, int width, int px, int py) {
  const size_t row_bytes = static_cast<size_t>(tile_px) * 3;
  uint8_t* dst = rgb + (static_cast<size_t>(py) * width + px) * 3;
  for (int r = 0; r < tile_px; ++r) {
    std::memcpy(dst, tile + r * row_bytes, row_bytes);
    dst += static_cast<size_t>(width) * 3;
  }
}

void VisibleCellsInto(const WorldState& world, std::vector<uint8_t>* mask) {
  const Grid& g = world.grid;
  mask->assign(static_cast<size_t>(g.width()) * g.height(), 0);
  const int v = world.agent_view_size;
  Scratch& s = GetScratch();
  s.obs.resize(static_cast<size_t>(ObservationBytes(v)));
  bool* visible = s.Visible(static_cast<size_t>(v) * v);
  Observe(world, s.obs.data(), visible);
  for (int i = 0; i < v; ++i) {
    for (int j = 0; j < v; ++j) {
      if (!visible[i * v + j]) continue;
      const Pos p = ViewToWorld(world, i, j);
      if (g.InBounds(p)) (*mask)[static_cast<size_t>(p.y) * g.width() + p.x] = 1;
    }
  }
}

}  // namespace

const uint8_t* ColorRgb(Color c) { return kColorRgb[static_cast<int>(c) % kNumColors]; }

void VisibleCells(const WorldState& world, std::vector<uint8_t>* mask) {
  VisibleCellsInto(world, mask);
}

void RenderGrid(const WorldState& world, const RenderOptions& options, uint8_t* rgb) {
  const int ts = options.tile_px;
  CheckTilePx(ts);
  const Grid& g = world.grid;
  const int width_px = g.width() * ts;
  Scratch& s = GetScratch();
  if (options.highlight_visible) VisibleCellsInto(world, &s.mask);
  TileCache& cache = Cache();
  cache.Trim();
  for (int y = 0; y < g.height(); ++y) {
    for (int x = 0; x < g.width(); ++x) {
      const Object& o = g.at(x, y);
      const bool agent_here =
          options.draw_agent && world.agent_pos.x == x && world.agent_pos.y == y;
      const bool hl =
          options.highlight_visible && s.mask[static_cast<size_t>(y) * g.width() + x] != 0;
      const bool is_empty = o.empty();
      const uint8_t* tile =
          cache.Get(is_empty ? ObjectType::kEmpty : o.type, is_empty ? Color::kRed : o.color,
                    o.is_door() ? o.state : 0, agent_here ? (world.agent_dir & 3) : -1, hl, ts);
      Blit(tile, ts, rgb, width_px, x * ts, y * ts);
    }
  }
}

void RenderGrid(const WorldState& world, const RenderOptions& options, RgbImage* out) {
  CheckTilePx(options.tile_px);
  out->Resize(GridImageWidth(world, options), GridImageHeight(world, options));
  RenderGrid(world, options, out->pixels.data());
}

void RenderObservation(const uint8_t* obs, int view_size, const RenderOptions& options,
                       RgbImage* out) {
  const int ts = options.tile_px;
  CheckTilePx(ts);
  if (view_size < 1) throw std::invalid_argument("view_size must be positive");
  const int v = view_size;
  out->Resize(v * ts, v * ts);
  TileCache& cache = Cache();
  cache.Trim();
  for (int i = 0; i < v; ++i) {
    for (int j = 0; j < v; ++j) {
      const uint8_t* code = obs + (static_cast<size_t>(i) * v + j) * 3;
      if (code[0] > static_cast<uint8_t>(ObjectType::kAgent) || code[1] >= kNumColors ||
          code[2] > static_cast<uint8_t>(DoorState::kLocked)) {
        throw std::invalid_argument("observation cell (" + std::to_string(i) + ", " +
                                    std::to_string(j) + ") has an invalid code (" +
                                    std::to_string(code[0]) + ", " + std::to_string(code[1]) +
                                    ", " + std::to_string(code[2]) + ")");
      }
      auto type = static_cast<ObjectType>(code[0]);
      const bool visible = type != ObjectType::kUnseen;
      const bool none =
          type == ObjectType::kUnseen || type == ObjectType::kEmpty || type == ObjectType::kAgent;
      if (none) type = ObjectType::kEmpty;
      const bool agent_here = options.draw_agent && i == v / 2 && j == v - 1;
      const uint8_t* tile = cache.Get(type, none ? Color::kRed : static_cast<Color>(code[1]),
                                      type == ObjectType::kDoor ? code[2] : 0, agent_here ? 3 : -1,
                                      options.highlight_visible && visible, ts);
      Blit(tile, ts, out->pixels.data(), v * ts, i * ts, j * ts);
    }
  }
}

void RenderAgentView(const WorldState& world, const RenderOptions& options, RgbImage* out) {
  const int v = world.agent_view_size;
  Scratch& s = GetScratch();
  s.obs.resize(static_cast<size_t>(ObservationBytes(v)));
  Observe(world, s.obs.data(), nullptr);
  RenderObservation(s.obs.data(), v, options, out);
}

void RenderTile(const Object& obj, int agent_dir, bool highlight, int tile_px, RgbImage* out) {
  CheckTilePx(tile_px);
  out->Resize(tile_px, tile_px);
  const bool is_empty = obj.empty();
  DrawTile(is_empty ? ObjectType::kEmpty : obj.type, is_empty ? Color::kRed : obj.color,
           obj.is_door() ? obj.state : 0, (agent_dir >= 0 && agent_dir <= 3) ? agent_dir : -1,
           highlight, tile_px, out->pixels.data());
}

}  // namespace skillgrid::envs
