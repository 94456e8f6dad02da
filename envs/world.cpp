// Minigrid world mechanics: step, egocentric observation, full-grid encoding.
#include "envs/world.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace skillgrid::envs {

namespace {
constexpr std::string_view kTypeNames[] = {"unseen", "empty", "wall", "floor", "door", "key",
                                           "ball",   "box",   "goal", "lava",  "agent"};
constexpr std::string_view kColorNames[] = {"red", "green", "blue", "purple", "yellow", "grey"};
constexpr std::string_view kActionNames[] = {"left",   "right",  "forward", "pickup",
                                             "drop",   "toggle", "done"};
}  // namespace

const std::array<Color, kNumColors> kColorsByName = {Color::kBlue,   Color::kGreen, Color::kGrey,
                                                     Color::kPurple, Color::kRed,   Color::kYellow};

std::string_view ObjectTypeName(ObjectType t) {
  auto i = static_cast<size_t>(t);
  return i < std::size(kTypeNames) ? kTypeNames[i] : std::string_view("?");
}
std::string_view ColorName(Color c) {
  auto i = static_cast<size_t>(c);
  return i < std::size(kColorNames) ? kColorNames[i] : std::string_view("?");
}
std::string_view ActionName(Action a) {
  auto i = static_cast<size_t>(a);
  return i < std::size(kActionNames) ? kActionNames[i] : std::string_view("?");
}
bool ParseObjectType(std::string_view name, ObjectType* out) {
  for (size_t i = 0; i < std::size(kTypeNames); ++i) {
    if (kTypeNames[i] == name) {
      *out = static_cast<ObjectType>(i);
      return true;
    }
  }
  return false;
}
bool ParseColor(std::string_view name, Color* out) {
  for (size_t i = 0; i < std::size(kColorNames); ++i) {
    if (kColorNames[i] == name) {
      *out = static_cast<Color>(i);
      return true;
    }
  }
  return false;
}

Grid::Grid(int width, int height, int pad)
    : width_(width), height_(height), pad_(pad), stride_(width + 2 * pad) {
  cells_.resize(static_cast<size_t>(stride_) * (height + 2 * pad));
  Clear();
}

void Grid::Clear() {
  const Object wall = MakeObject(ObjectType::kWall, Color::kGrey);
  const int rows = height_ + 2 * pad_;
  for (int py = 0; py < rows; ++py) {
    for (int px = 0; px < stride_; ++px) {
      const bool inside =
          px >= pad_ && px < pad_ + width_ && py >= pad_ && py < pad_ + height_;
      cells_[static_cast<size_t>(py) * stride_ + px] = inside ? Object{} : wall;
    }
  }
}

Pos RoomLayout::RoomOf(Pos p) const {
  const int step = room_size - 1;
  int col = std::clamp(p.x / step, 0, num_cols - 1);
  int row = std::clamp(p.y / step, 0, num_rows - 1);
  return {col, row};
}

bool RoomLayout::Inside(int col, int row, Pos p) const {
  const Pos top = RoomTopLeft(col, row);
  return p.x >= top.x && p.y >= top.y && p.x < top.x + room_size && p.y < top.y + room_size;
}

StepOutcome StepWorld(WorldState& w, Action action) {
  StepOutcome out;
  w.step_count += 1;
  const Pos fwd = w.FrontPos();
  Object& fwd_cell = w.grid.at(fwd);

  switch (action) {
    case Action::kLeft:
      w.agent_dir = (w.agent_dir + 3) & 3;
      break;
    case Action::kRight:
      w.agent_dir = (w.agent_dir + 1) & 3;
      break;
    case Action::kForward:
      if (fwd_cell.can_overlap()) w.agent_pos = fwd;
      if (fwd_cell.type == ObjectType::kGoal) {
        out.terminated = true;
        out.reward = SuccessReward(w);
      } else if (fwd_cell.type == ObjectType::kLava) {
        out.terminated = true;
      }
      break;
    case Action::kPickup:
      if (fwd_cell.can_pickup() && w.carrying.empty()) {
        w.carrying = fwd_cell;
        w.carrying_pos = {-1, -1};
        fwd_cell = Object{};
      }
      break;
    case Action::kDrop:
      if (fwd_cell.empty() && !w.carrying.empty()) {
        fwd_cell = w.carrying;
        w.carrying = Object{};
        w.carrying_pos = {-1, -1};
      }
      break;
    case Action::kToggle:
      if (fwd_cell.type == ObjectType::kDoor) {
        if (fwd_cell.state == static_cast<uint8_t>(DoorState::kLocked)) {
          if (w.carrying.type == ObjectType::kKey && w.carrying.color == fwd_cell.color) {
            fwd_cell.state = static_cast<uint8_t>(DoorState::kOpen);
          }
        } else {
          fwd_cell.state = fwd_cell.state == static_cast<uint8_t>(DoorState::kOpen)
                               ? static_cast<uint8_t>(DoorState::kClosed)
                               : static_cast<uint8_t>(DoorState::kOpen);
        }
      } else if (fwd_cell.type == ObjectType::kBox) {
        // The box is replaced by its contents (or vanishes); the contents become a world object.
        Object inner;
        if (fwd_cell.inner_type != ObjectType::kEmpty) {
          inner = MakeObject(fwd_cell.inner_type, fwd_cell.inner_color, fwd_cell.inner_state);
          inner.id = w.next_id++;
        }
        fwd_cell = inner;
      }
      break;
    case Action::kDone:
      break;
  }
  out.truncated = w.step_count >= w.max_steps;
  return out;
}

Pos ViewToWorld(const WorldState& w, int i, int j) {
  const int v = w.agent_view_size;
  const Pos f = DirVec(w.agent_dir);
  const Pos r{-f.y, f.x};
  const int half = v / 2;
  const int tlx = w.agent_pos.x + f.x * (v - 1) - r.x * half;
  const int tly = w.agent_pos.y + f.y * (v - 1) - r.y * half;
  return {tlx - f.x * j + r.x * i, tly - f.y * j + r.y * i};
}

namespace {

// see_behind() by (type << 2 | state): only walls and closed or locked doors block sight.
struct SeeBehindTable {
  bool value[64];
  constexpr SeeBehindTable() : value() {
    for (int t = 0; t < 16; ++t)
      for (int s = 0; s < 4; ++s)
        value[t * 4 + s] = !(t == static_cast<int>(ObjectType::kWall) ||
                             (t == static_cast<int>(ObjectType::kDoor) && s != 0));
  }
};
constexpr SeeBehindTable kSeeBehind;

inline bool SeesBehind(const Object& o) {
  return kSeeBehind.value[(static_cast<int>(o.type) << 2) | (o.state & 3)];
}

// One row of Minigrid's process_vis on bit masks (bit i = view column i): the left-to-right
// pass spreads marks rightwards through see-through cells, then the right-to-left pass
// leftwards; every marked see-through cell also marks its diagonal and upper neighbours in the
// next row (returned in *up).
inline uint32_t SpreadRow(uint32_t marks, uint32_t see_through, int width, uint32_t* up) {
  const uint32_t full = (1u << width) - 1u;
  const uint32_t rightward = see_through & (full >> 1);  // columns 0..width-2
  const uint32_t leftward = see_through & full & ~1u;    // columns 1..width-1
  uint32_t m = marks;
  for (uint32_t prev = ~m; prev != m;) {
    prev = m;
    m |= (m & rightward) << 1;
  }
  const uint32_t right_spread = m & rightward;
  for (uint32_t prev = ~m; prev != m;) {
    prev = m;
    m |= (m & leftward) >> 1;
  }
  const uint32_t left_spread = m & leftward;
  *up = right_spread | (right_spread << 1) | left_spread | (left_spread >> 1);
  return m;
}

// SpreadRow for the default 7-wide view, tabulated over (marks, see_through): 2^14 entries of
// (row mask | up mask << 8), so a row costs one load.
constexpr int kTableView = 7;
struct SpreadTable {
  uint16_t entry[1 << (2 * kTableView)];
  SpreadTable() {
    for (uint32_t m = 0; m < (1u << kTableView); ++m) {
      for (uint32_t t = 0; t < (1u << kTableView); ++t) {
        uint32_t up = 0;
        const uint32_t row = SpreadRow(m, t, kTableView, &up);
        entry[(m << kTableView) | t] = static_cast<uint16_t>(row | (up << 8));
      }
    }
  }
};
const SpreadTable kSpread7;

}  // namespace

namespace {

// Observation for a view of side V (V = 0: any size, read from the world). The fixed-size
// instance lets the compiler unroll the loops of the default 7x7 view, the hot path.
template <int V>
void ObserveImpl(const WorldState& w, uint8_t* image, bool* visible_out) {
  constexpr int kMaxView = 31;
  const int v = V > 0 ? V : std::min(w.agent_view_size, kMaxView);
  const Pos f = DirVec(w.agent_dir);
  const Pos r{-f.y, f.x};
  const int half = v / 2;
  const Grid& g = w.grid;
  // Strides in the padded storage for one view column (i) and one view row (j).
  const int di = r.y * g.stride() + r.x;
  const int dj = -(f.y * g.stride() + f.x);
  const Object* tl = g.data() + g.Index(w.agent_pos.x + f.x * (v - 1) - r.x * half,
                                        w.agent_pos.y + f.y * (v - 1) - r.y * half);
  const int ai = v / 2, aj = v - 1;

  // Visibility (Minigrid's process_vis) row by row, nearest row first, on bit masks.
  uint32_t rows[kMaxView];
  if (w.see_through_walls) {
    for (int j = 0; j < v; ++j) rows[j] = (1u << v) - 1u;
  } else {
    uint32_t carry = 1u << ai;  // marks handed from row j+1 to row j
    for (int j = v - 1; j >= 0; --j) {
      uint32_t see_through = 0;
      const Object* cell = tl + j * dj;
      for (int i = 0; i < v; ++i, cell += di) {
        see_through |= static_cast<uint32_t>(SeesBehind(*cell)) << i;
      }
      if (v == kTableView) {
        const uint32_t e = kSpread7.entry[(carry << kTableView) | see_through];
        rows[j] = e & 0xffu;
        carry = e >> 8;
      } else {
        uint32_t up = 0;
        rows[j] = SpreadRow(carry, see_through, v, &up);
        carry = up;
      }
    }
  }

  // Encode: (type, colour, state) of visible cells, (0, 0, 0) for unseen ones. An Object's
  // encoding is its first three bytes; an empty cell's is always (1, 0, 0). Each cell is
  // written as a 4-byte word whose spare byte the next cell overwrites; the last cell is
  // written byte by byte so nothing past the image is touched.
  static_assert(offsetof(Object, type) == 0 && offsetof(Object, color) == 1 &&
                    offsetof(Object, state) == 2,
                "Observe reads an Object's first three bytes as its encoding");
  uint8_t* out = image;
  for (int i = 0; i < v; ++i) {
    const Object* cell = tl + i * di;
    for (int j = 0; j < v; ++j, cell += dj, out += 3) {
      uint32_t word;
      std::memcpy(&word, cell, sizeof(word));
      word &= 0u - ((rows[j] >> i) & 1u);
      if (i == v - 1 && j == v - 1) {
        out[0] = static_cast<uint8_t>(word);
        out[1] = static_cast<uint8_t>(word >> 8);
        out[2] = static_cast<uint8_t>(word >> 16);
      } else {
        std::memcpy(out, &word, sizeof(word));
      }
    }
  }
  // The agent never sees itself: its own (always visible) cell shows what it carries; empty
  // hands encode as an empty cell.
  uint8_t* own = image + (ai * v + aj) * 3;
  own[0] = static_cast<uint8_t>(w.carrying.type);
  own[1] = static_cast<uint8_t>(w.carrying.color);
  own[2] = w.carrying.state;

  if (visible_out) {
    for (int i = 0; i < v; ++i)
      for (int j = 0; j < v; ++j) visible_out[i * v + j] = (rows[j] >> i) & 1u;
  }
}

}  // namespace

void Observe(const WorldState& w, uint8_t* image, bool* visible_out) {
  if (w.agent_view_size == kTableView) {
    ObserveImpl<kTableView>(w, image, visible_out);
  } else {
    ObserveImpl<0>(w, image, visible_out);
  }
}

void EncodeFullGrid(const WorldState& w, uint8_t* out) {
  const Grid& g = w.grid;
  for (int x = 0; x < g.width(); ++x) {
    for (int y = 0; y < g.height(); ++y, out += 3) {
      const Object& o = g.at(x, y);
      if (Pos{x, y} == w.agent_pos) {
        out[0] = static_cast<uint8_t>(ObjectType::kAgent);
        out[1] = 0;
        out[2] = static_cast<uint8_t>(w.agent_dir);
      } else if (o.empty()) {
        out[0] = static_cast<uint8_t>(ObjectType::kEmpty);
        out[1] = out[2] = 0;
      } else {
        out[0] = static_cast<uint8_t>(o.type);
        out[1] = static_cast<uint8_t>(o.color);
        out[2] = o.state;
      }
    }
  }
}

}  // namespace skillgrid::envs
