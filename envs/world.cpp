// Minigrid world mechanics: step, egocentric observation, full-grid encoding.
#include "envs/world.h"

#include <algorithm>

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

void Observe(const WorldState& w, uint8_t* image, bool* visible_out) {
  constexpr int kMaxView = 31;
  const int v = std::min(w.agent_view_size, kMaxView);
  const Pos f = DirVec(w.agent_dir);
  const Pos r{-f.y, f.x};
  const int half = v / 2;
  const Grid& g = w.grid;
  // Strides in the padded storage for moving one view column (i) and one view row (j).
  const int di = r.y * g.stride() + r.x;
  const int dj = -(f.y * g.stride() + f.x);
  const int tl = g.Index(w.agent_pos.x + f.x * (v - 1) - r.x * half,
                         w.agent_pos.y + f.y * (v - 1) - r.y * half);
  const Object* cells = g.data();

  // Gather the view: cell pointers in [i][j] order.
  const Object* view[kMaxView][kMaxView];
  for (int i = 0; i < v; ++i) {
    int idx = tl + i * di;
    for (int j = 0; j < v; ++j, idx += dj) view[i][j] = &cells[idx];
  }

  bool mask[kMaxView][kMaxView];
  const int ai = v / 2, aj = v - 1;
  if (w.see_through_walls) {
    for (int i = 0; i < v; ++i)
      for (int j = 0; j < v; ++j) mask[i][j] = true;
  } else {
    for (int i = 0; i < v; ++i)
      for (int j = 0; j < v; ++j) mask[i][j] = false;
    mask[ai][aj] = true;
    for (int j = v - 1; j >= 0; --j) {
      for (int i = 0; i < v - 1; ++i) {
        if (!mask[i][j] || !view[i][j]->see_behind()) continue;
        mask[i + 1][j] = true;
        if (j > 0) {
          mask[i + 1][j - 1] = true;
          mask[i][j - 1] = true;
        }
      }
      for (int i = v - 1; i > 0; --i) {
        if (!mask[i][j] || !view[i][j]->see_behind()) continue;
        mask[i - 1][j] = true;
        if (j > 0) {
          mask[i - 1][j - 1] = true;
          mask[i][j - 1] = true;
        }
      }
    }
  }

  for (int i = 0; i < v; ++i) {
    uint8_t* out = image + i * v * 3;
    for (int j = 0; j < v; ++j, out += 3) {
      if (!mask[i][j]) {
        out[0] = out[1] = out[2] = 0;
        continue;
      }
      const Object& o = (i == ai && j == aj) ? w.carrying : *view[i][j];
      if (o.empty()) {
        out[0] = static_cast<uint8_t>(ObjectType::kEmpty);
        out[1] = 0;
        out[2] = 0;
      } else {
        out[0] = static_cast<uint8_t>(o.type);
        out[1] = static_cast<uint8_t>(o.color);
        out[2] = o.state;
      }
    }
  }
  if (visible_out) {
    for (int i = 0; i < v; ++i)
      for (int j = 0; j < v; ++j) visible_out[i * v + j] = mask[i][j];
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
