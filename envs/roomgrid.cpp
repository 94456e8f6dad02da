// The BabyAI room-grid builder; see roomgrid.h.
#include "envs/roomgrid.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace skillgrid::envs {
namespace {

constexpr ObjectType kObjectKinds[3] = {ObjectType::kKey, ObjectType::kBall, ObjectType::kBox};

}  // namespace

Grid RoomGrid::MakeWallGrid(const RoomLayout& layout, uint16_t* next_id) {
  if (!layout.valid()) throw std::invalid_argument("MakeWallGrid: invalid room layout");
  const int step = layout.room_size - 1;
  const int width = step * layout.num_cols + 1;
  const int height = step * layout.num_rows + 1;
  Grid g(width, height);
  const Object wall = MakeObject(ObjectType::kWall, Color::kGrey);
  // Rooms share walls, so every wall lies on a multiple of `step` in x or y.
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (x % step == 0 || y % step == 0) g.at(x, y) = wall;
    }
  }
  uint16_t id = 1;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      if (!g.at(x, y).empty()) g.at(x, y).id = id++;
    }
  }
  *next_id = id;
  return g;
}

void RoomGrid::Reset(const RoomLayout& layout, const Grid& walls, uint16_t next_id) {
  if (!layout.valid() || layout.num_rows * layout.num_cols > kMaxRooms) {
    throw std::invalid_argument("RoomGrid: a layout needs room_size >= 3 and at most " +
                                std::to_string(kMaxRooms) + " rooms");
  }
  const int step = layout.room_size - 1;
  if (walls.width() != step * layout.num_cols + 1 || walls.height() != step * layout.num_rows + 1) {
    throw std::invalid_argument("RoomGrid: the wall grid does not match the layout");
  }
  layout_ = layout;
  WorldState& w = *w_;
  if (w.grid.width() == walls.width() && w.grid.height() == walls.height() &&
      w.grid.pad() == walls.pad()) {
    // Same shape as the last episode: the padding (walls) never changes, copy the grid rows.
    for (int y = 0; y < walls.height(); ++y) {
      std::copy_n(&walls.at(0, y), walls.width(), &w.grid.at(0, y));
    }
  } else {
    w.grid = walls;
  }
  w.rooms = layout;
  w.next_id = next_id;
  w.carrying = Object{};
  w.carrying_pos = {-1, -1};
  w.step_count = 0;
  w.agent_view_size = 7;
  w.see_through_walls = false;
  w.mission.clear();
  num_objs_ = 0;

  // Bit masks of the wall grid: full rows on multiples of step, else the wall columns.
  use_bits_ = walls.width() <= 64 && walls.height() <= kMaxBitRows;
  if (use_bits_) {
    const uint64_t full = walls.width() == 64 ? ~uint64_t{0} : (uint64_t{1} << walls.width()) - 1;
    uint64_t cols_mask = 0;
    for (int x = 0; x < walls.width(); x += step) cols_mask |= uint64_t{1} << x;
    for (int y = 0, in_room = 0; y < walls.height();
         ++y, in_room = in_room == step - 1 ? 0 : in_room + 1) {
      walls_[y] = occupied_[y] = in_room == 0 ? full : cols_mask;
      doors_[y] = 0;
    }
  }

  const int rows = layout.num_rows;
  const int cols = layout.num_cols;
  for (int j = 0; j < rows; ++j) {
    for (int i = 0; i < cols; ++i) {
      Room& r = mutable_room(i, j);
      r.top = {i * step, j * step};
      r.has_neighbor = {i<cols - 1, j<rows - 1, i> 0, j> 0};
      r.side = {RoomSide::kWall, RoomSide::kWall, RoomSide::kWall, RoomSide::kWall};
      r.locked = false;
    }
  }
  // Door slots: interior offsets 1..rs-2 of each shared wall, drawn rows outer, columns inner.
  for (int j = 0; j < rows; ++j) {
    for (int i = 0; i < cols; ++i) {
      Room& r = mutable_room(i, j);
      const int xl = r.top.x + 1, yl = r.top.y + 1;
      const int xm = r.top.x + step, ym = r.top.y + step;
      if (i < cols - 1) r.door_pos[kSideRight] = {xm, rng_->Int(yl, ym)};
      if (j < rows - 1) r.door_pos[kSideDown] = {rng_->Int(xl, xm), ym};
      if (i > 0) r.door_pos[kSideLeft] = mutable_room(i - 1, j).door_pos[kSideRight];
      if (j > 0) r.door_pos[kSideUp] = mutable_room(i, j - 1).door_pos[kSideDown];
    }
  }
  w.agent_pos = {(cols / 2) * step + layout.room_size / 2,
                 (rows / 2) * step + layout.room_size / 2};
  w.agent_dir = 0;
}

void RoomGrid::RoomRect(int col, int row, int* x0, int* x1, int* y0, int* y1) const {
  const Room& r = room(col, row);
  const int last = layout_.room_size - 1;
  *x0 = r.top.x + (r.side[kSideLeft] == RoomSide::kOpening ? 0 : 1);
  *x1 = r.top.x + last + (r.side[kSideRight] == RoomSide::kOpening ? 1 : 0);
  *y0 = r.top.y + (r.side[kSideUp] == RoomSide::kOpening ? 0 : 1);
  *y1 = r.top.y + last + (r.side[kSideDown] == RoomSide::kOpening ? 1 : 0);
}

Pos RoomGrid::PlaceObj(int x0, int x1, int y0, int y1, bool reject_near_agent, int max_tries) {
  const Pos a = w_->agent_pos;
  const Grid& g = w_->grid;
  for (int t = 0; t < max_tries; ++t) {
    const Pos p{rng_->Int(x0, x1), rng_->Int(y0, y1)};
    if (!g.at(p).empty() || p == a) continue;
    if (reject_near_agent && std::abs(p.x - a.x) + std::abs(p.y - a.y) < 2) continue;
    return p;
  }
  throw GenerationError("place_obj: no free cell after " + std::to_string(max_tries) + " tries");
}

void RoomGrid::Place(Pos p, const Object& obj) {
  w_->Place(p, obj);
  if (!use_bits_) return;
  const uint64_t bit = uint64_t{1} << p.x;
  const uint64_t keep = ~bit;
  occupied_[p.y] = (occupied_[p.y] & keep) | (obj.empty() ? 0 : bit);
  walls_[p.y] = (walls_[p.y] & keep) | (obj.type == ObjectType::kWall ? bit : 0);
  doors_[p.y] = (doors_[p.y] & keep) | (obj.type == ObjectType::kDoor ? bit : 0);
}

Pos RoomGrid::PlaceInRoom(int col, int row, const Object& obj) {
  int x0, x1, y0, y1;
  RoomRect(col, row, &x0, &x1, &y0, &y1);
  const Pos p = PlaceObj(x0, x1, y0, y1, /*reject_near_agent=*/true, 1000);
  Place(p, obj);
  if (num_objs_ >= kMaxObjects) throw std::logic_error("RoomGrid: too many objects");
  objs_[num_objs_++] = {obj.type, obj.color};
  return p;
}

Pos RoomGrid::AddObject(int col, int row, ObjectType kind, std::optional<Color> color) {
  if (kind == ObjectType::kEmpty) kind = kObjectKinds[rng_->Int(0, 3)];
  const Color c = color ? *color : RandColor(*rng_);
  return PlaceInRoom(col, row, MakeObject(kind, c));
}

Pos RoomGrid::AddDoor(int col, int row, int side, std::optional<Color> color,
                      std::optional<bool> locked) {
  Room& r = mutable_room(col, row);
  auto free_side = [&r](int k) { return r.has_neighbor[k] && r.side[k] == RoomSide::kWall; };
  if (side == kRandom) {
    if (!free_side(0) && !free_side(1) && !free_side(2) && !free_side(3)) {
      throw std::logic_error("add_door: the room has no free side");
    }
    do {
      side = rng_->Int(0, 4);
    } while (!free_side(side));
  } else if (side < 0 || side > 3 || !free_side(side)) {
    throw std::logic_error("add_door: side " + std::to_string(side) +
                           " has no neighbour or already a door");
  }
  const Color c = color ? *color : RandColor(*rng_);
  const bool lock = locked ? *locked : rng_->Bool();
  r.locked = lock;  // upstream sets it on every call, even for unlocked doors
  const Pos p = r.door_pos[side];
  Place(p, MakeObject(ObjectType::kDoor, c,
                      static_cast<uint8_t>(lock ? DoorState::kLocked : DoorState::kClosed)));
  const Pos d = DirVec(side);
  r.side[side] = RoomSide::kDoor;
  mutable_room(col + d.x, row + d.y).side[(side + 2) & 3] = RoomSide::kDoor;
  return p;
}

void RoomGrid::RemoveWall(int col, int row, int side) {
  Room& r = mutable_room(col, row);
  if (side < 0 || side > 3 || !r.has_neighbor[side] || r.side[side] != RoomSide::kWall) {
    throw std::logic_error("remove_wall: side " + std::to_string(side) +
                           " has no neighbour or a door");
  }
  const int last = layout_.room_size - 1;
  for (int k = 1; k < last; ++k) {
    switch (side) {
      case kSideRight:
        Place({r.top.x + last, r.top.y + k}, Object{});
        break;
      case kSideDown:
        Place({r.top.x + k, r.top.y + last}, Object{});
        break;
      case kSideLeft:
        Place({r.top.x, r.top.y + k}, Object{});
        break;
      default:
        Place({r.top.x + k, r.top.y}, Object{});
        break;
    }
  }
  const Pos d = DirVec(side);
  r.side[side] = RoomSide::kOpening;
  mutable_room(col + d.x, row + d.y).side[(side + 2) & 3] = RoomSide::kOpening;
}

void RoomGrid::PlaceAgent(int col, int row) {
  if (col == kRandom) col = RandIndex(*rng_, layout_.num_cols);
  if (row == kRandom) row = RandIndex(*rng_, layout_.num_rows);
  int x0, x1, y0, y1;
  RoomRect(col, row, &x0, &x1, &y0, &y1);
  WorldState& w = *w_;
  for (int t = 0; t < 1000; ++t) {
    w.agent_pos = {-1, -1};
    const Pos p = PlaceObj(x0, x1, y0, y1, /*reject_near_agent=*/false, 1000);
    w.agent_pos = p;
    w.agent_dir = rng_->Int(0, 4);
    const Object& front = w.grid.at(w.FrontPos());
    if (front.empty() || front.type == ObjectType::kWall) return;
  }
  throw GenerationError("place_agent: every pose faces an object");
}

uint32_t RoomGrid::RoomsReachableFrom(Pos start) const {
  const int cols = layout_.num_cols;
  int stack[kMaxRooms];
  int sp = 0;
  stack[sp++] = start.y * cols + start.x;
  uint32_t reach = 1u << stack[0];
  while (sp > 0) {
    const int idx = stack[--sp];
    const Room& r = rooms_[idx];
    for (int k = 0; k < 4; ++k) {
      if (r.side[k] == RoomSide::kWall) continue;
      const Pos d = DirVec(k);
      const int n = idx + d.y * cols + d.x;
      if (!(reach & (1u << n))) {
        reach |= 1u << n;
        stack[sp++] = n;
      }
    }
  }
  return reach;
}

void RoomGrid::ConnectAll(const Color* colors, int num_colors, int max_itrs) {
  const int rows = layout_.num_rows;
  const int cols = layout_.num_cols;
  const Pos start = RoomFromPos(w_->agent_pos);
  const uint32_t all = (1u << (rows * cols)) - 1u;
  // The reachable set only changes when a door is added: recompute it then.
  uint32_t reach = RoomsReachableFrom(start);
  for (int itr = 0;; ++itr) {
    if (itr > max_itrs) throw GenerationError("connect_all failed");
    if (reach == all) return;
    const int i = RandIndex(*rng_, cols);
    const int j = RandIndex(*rng_, rows);
    const int k = rng_->Int(0, 4);
    const Room& r = room(i, j);
    if (!r.has_neighbor[k] || r.side[k] != RoomSide::kWall) continue;
    const Pos d = DirVec(k);
    if (r.locked || room(i + d.x, j + d.y).locked) continue;
    AddDoor(i, j, k, colors[RandIndex(*rng_, num_colors)], false);
    reach = RoomsReachableFrom(start);
  }
}

void RoomGrid::AddDistractors(int col, int row, int n, bool all_unique, Pos* out) {
  int placed = 0;
  for (int draws = 0; placed < n; ++draws) {
    if (draws > 100000) throw GenerationError("add_distractors: no unique object left");
    const Color c = RandColor(*rng_);
    const ObjectType t = kObjectKinds[rng_->Int(0, 3)];
    if (all_unique) {
      bool seen = false;
      for (int k = 0; k < num_objs_ && !seen; ++k) seen = objs_[k].type == t && objs_[k].color == c;
      if (seen) continue;
    }
    const int ci = col == kRandom ? RandIndex(*rng_, layout_.num_cols) : col;
    const int ri = row == kRandom ? RandIndex(*rng_, layout_.num_rows) : row;
    out[placed++] = AddObject(ci, ri, t, c);
  }
}

namespace {

// Grows a row's seed bits `s` through the contiguous runs of `p` they touch (occluded fills
// toward higher and lower x, Kogge-Stone style: log2(width) shift steps each way).
inline uint64_t FillRuns(uint64_t s, uint64_t p, int width) {
  uint64_t up = s, down = s, pu = p, pd = p;
  for (int shift = 1; shift < width; shift <<= 1) {
    up |= pu & (up << shift);
    pu &= pu << shift;
    down |= pd & (down >> shift);
    pd &= pd >> shift;
  }
  return up | down;
}

}  // namespace

bool RoomGrid::CheckObjsReachable() const {
  const Grid& g = w_->grid;
  const int width = g.width(), height = g.height();
  if (!use_bits_) return CheckObjsReachableByCells();
  if (width * height <= 64) return CheckObjsReachableSmall();
  // Per row: passable cells (empty or any door), cells that must be reached (non-wall
  // objects), and the expanded set E (the agent's cell plus passable cells joined to it).
  uint64_t pass[kMaxBitRows] = {}, need[kMaxBitRows], e[kMaxBitRows];
  const uint64_t full = width == 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1;
  for (int y = 0; y < height; ++y) {
    pass[y] = (~occupied_[y] | doors_[y]) & full;
    need[y] = occupied_[y] & ~walls_[y];
    e[y] = 0;
  }
  const Pos a = w_->agent_pos;
  e[a.y] = FillRuns(uint64_t{1} << a.x, pass[a.y] | (uint64_t{1} << a.x), width);
  // Rows whose neighbours grew since they were last looked at (bit y = row y).
  const uint64_t all_rows = height == 64 ? ~uint64_t{0} : (uint64_t{1} << height) - 1;
  auto neighbours = [all_rows](int y) {
    return ((uint64_t{1} << y << 1) | (uint64_t{1} << y >> 1)) & all_rows;
  };
  for (uint64_t dirty = neighbours(a.y); dirty != 0;) {
    const int y = __builtin_ctzll(dirty);
    dirty &= dirty - 1;
    const uint64_t nb = (y > 0 ? e[y - 1] : 0) | (y + 1 < height ? e[y + 1] : 0);
    const uint64_t seeds = nb & pass[y] & ~e[y];
    if (seeds == 0) continue;
    e[y] |= FillRuns(seeds, pass[y], width);
    dirty |= neighbours(y);
  }
  // Reached = E plus its 4-neighbours (objects are reached but not expanded).
  for (int y = 0; y < height; ++y) {
    const uint64_t reached =
        e[y] | (e[y] << 1) | (e[y] >> 1) | (y > 0 ? e[y - 1] : 0) | (y + 1 < height ? e[y + 1] : 0);
    if (need[y] & ~reached) return false;
  }
  return true;
}

bool RoomGrid::CheckObjsReachableSmall() const {
  // The whole grid as one 64-bit board, row-major (bit y * width + x). The outer border is
  // all walls, so the expanded set never touches it and the shifts by 1 cannot wrap a row.
  const int width = w_->grid.width(), height = w_->grid.height();
  const uint64_t row_mask = width == 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1;
  uint64_t pass = 0, need = 0;
  for (int y = 0; y < height; ++y) {
    pass |= ((~occupied_[y] | doors_[y]) & row_mask) << (y * width);
    need |= (occupied_[y] & ~walls_[y]) << (y * width);
  }
  const Pos a = w_->agent_pos;
  uint64_t e = uint64_t{1} << (a.y * width + a.x);
  for (;;) {
    const uint64_t grown = (e | (e << 1) | (e >> 1) | (e << width) | (e >> width)) & pass;
    if ((grown | e) == e) break;
    e |= grown;
  }
  const uint64_t reached = e | (e << 1) | (e >> 1) | (e << width) | (e >> width);
  return (need & ~reached) == 0;
}

bool RoomGrid::CheckObjsReachableByCells() const {
  const Grid& g = w_->grid;
  const int total = g.stride() * (g.height() + 2 * g.pad());
  std::vector<uint8_t> seen(static_cast<size_t>(total), 0);
  std::vector<int> stack;
  const Object* cells = g.data();
  const int offs[4] = {1, -1, g.stride(), -g.stride()};
  const int start = g.Index(w_->agent_pos.x, w_->agent_pos.y);
  seen[start] = 1;
  stack.push_back(start);
  while (!stack.empty()) {
    const int idx = stack.back();
    stack.pop_back();
    const Object& o = cells[idx];
    // Objects other than doors are reached but block the way (the padding is walls).
    if (!o.empty() && o.type != ObjectType::kDoor) continue;
    for (int off : offs) {
      const int n = idx + off;
      if (!seen[n]) {
        seen[n] = 1;
        stack.push_back(n);
      }
    }
  }
  for (int y = 0; y < g.height(); ++y) {
    const int base = g.Index(0, y);
    for (int x = 0; x < g.width(); ++x) {
      const Object& o = cells[base + x];
      if (!o.empty() && o.type != ObjectType::kWall && !seen[base + x]) return false;
    }
  }
  return true;
}

void RoomGrid::OpenAllDoors() {
  for (int idx = 0; idx < layout_.num_rows * layout_.num_cols; ++idx) {
    const Room& r = rooms_[idx];
    for (int k = 0; k < 4; ++k) {
      if (r.side[k] == RoomSide::kDoor) {
        w_->grid.at(r.door_pos[k]).state = static_cast<uint8_t>(DoorState::kOpen);
      }
    }
  }
}

int RoomGrid::CollectDoors(Pos* out, int capacity) const {
  int n = 0;
  for (int i = 0; i < layout_.num_cols; ++i) {
    for (int j = 0; j < layout_.num_rows; ++j) {
      const Room& r = room(i, j);
      for (int k = 0; k < 4; ++k) {
        if (r.side[k] == RoomSide::kDoor && n < capacity) out[n++] = r.door_pos[k];
      }
    }
  }
  return n;
}

int RoomGrid::ObjectCells(Pos* out, int capacity) const {
  const Grid& g = w_->grid;
  int n = 0;
  for (int y = 0; y < g.height(); ++y) {
    if (use_bits_) {
      for (uint64_t bits = occupied_[y] & ~walls_[y]; bits != 0 && n < capacity; bits &= bits - 1) {
        out[n++] = {__builtin_ctzll(bits), y};
      }
      continue;
    }
    for (int x = 0; x < g.width() && n < capacity; ++x) {
      const Object& o = g.at(x, y);
      if (!o.empty() && o.type != ObjectType::kWall) out[n++] = {x, y};
    }
  }
  return n;
}

uint32_t RoomGrid::LockedDoorColors() const {
  uint32_t bits = 0;
  for (int idx = 0; idx < layout_.num_rows * layout_.num_cols; ++idx) {
    const Room& r = rooms_[idx];
    for (int k = 0; k < 4; ++k) {
      if (r.side[k] != RoomSide::kDoor) continue;
      const Object& d = w_->grid.at(r.door_pos[k]);
      if (d.is_locked_door()) bits |= 1u << static_cast<int>(d.color);
    }
  }
  return bits;
}

}  // namespace skillgrid::envs
