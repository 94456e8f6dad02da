// World objects, the grid, the room grid and the full episode state of a Minigrid world.
// Exact Farama Minigrid 3.1 semantics; see ../shared/reference/minigrid-semantics.md.
// Everything here is plain data with value semantics: copying a WorldState copies the world.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace skillgrid::envs {

/// Object type, numbered as Minigrid's OBJECT_TO_IDX (the observation's channel 0).
enum class ObjectType : uint8_t {
  kUnseen = 0,
  kEmpty = 1,
  kWall = 2,
  kFloor = 3,
  kDoor = 4,
  kKey = 5,
  kBall = 6,
  kBox = 7,
  kGoal = 8,
  kLava = 9,
  kAgent = 10,
};

/// Colour, numbered as Minigrid's COLOR_TO_IDX (the observation's channel 1).
enum class Color : uint8_t { kRed = 0, kGreen = 1, kBlue = 2, kPurple = 3, kYellow = 4, kGrey = 5 };

/// Door state, numbered as Minigrid's STATE_TO_IDX (the observation's channel 2).
enum class DoorState : uint8_t { kOpen = 0, kClosed = 1, kLocked = 2 };

/// The seven Minigrid actions.
enum class Action : uint8_t {
  kLeft = 0,
  kRight = 1,
  kForward = 2,
  kPickup = 3,
  kDrop = 4,
  kToggle = 5,
  kDone = 6,
};

inline constexpr int kNumActions = 7;
inline constexpr int kNumColors = 6;

/// Lower-case Minigrid names ("wall", "red", "open", "left", ...).
std::string_view ObjectTypeName(ObjectType t);
std::string_view ColorName(Color c);
std::string_view ActionName(Action a);
/// Parses a name; returns false if it is not one (callers turn that into an error message).
bool ParseObjectType(std::string_view name, ObjectType* out);
bool ParseColor(std::string_view name, Color* out);

/// Minigrid's COLOR_NAMES: colours sorted by name (blue, green, grey, purple, red, yellow).
/// Random colour draws index this list.
extern const std::array<Color, kNumColors> kColorsByName;

/// A grid position; x grows to the right, y downward.
struct Pos {
  int x = 0;
  int y = 0;
  friend bool operator==(Pos a, Pos b) { return a.x == b.x && a.y == b.y; }
  friend bool operator!=(Pos a, Pos b) { return !(a == b); }
};

/// Unit vector of a direction (0 right, 1 down, 2 left, 3 up).
inline Pos DirVec(int dir) {
  static constexpr int kDx[4] = {1, 0, -1, 0};
  static constexpr int kDy[4] = {0, 1, 0, -1};
  return {kDx[dir & 3], kDy[dir & 3]};
}

/// One cell's content, by value. A default Object is an empty cell.
/// A box may hold one object (inner_*); objects inside a box hold nothing.
struct Object {
  ObjectType type = ObjectType::kEmpty;  ///< kEmpty means no object
  Color color = Color::kRed;             ///< meaningless for kEmpty
  uint8_t state = 0;                     ///< DoorState for doors, 0 for everything else
  ObjectType inner_type = ObjectType::kEmpty;  ///< a box's contents; kEmpty if none
  Color inner_color = Color::kRed;             ///< colour of the contents
  uint8_t inner_state = 0;                     ///< state of the contents (always 0 in practice)
  /// Identity of this object within an episode (Python's `is`): instructions track objects by
  /// it across pickups and drops. 0 for empty cells; unique per object otherwise.
  uint16_t id = 0;

  bool empty() const { return type == ObjectType::kEmpty; }
  /// Minigrid's can_overlap: the agent may walk onto it.
  bool can_overlap() const {
    return type == ObjectType::kEmpty || type == ObjectType::kFloor || type == ObjectType::kGoal ||
           type == ObjectType::kLava ||
           (type == ObjectType::kDoor && state == static_cast<uint8_t>(DoorState::kOpen));
  }
  /// Minigrid's can_pickup.
  bool can_pickup() const {
    return type == ObjectType::kKey || type == ObjectType::kBall || type == ObjectType::kBox;
  }
  /// Minigrid's see_behind: walls and closed or locked doors block sight.
  bool see_behind() const {
    return !(type == ObjectType::kWall ||
             (type == ObjectType::kDoor && state != static_cast<uint8_t>(DoorState::kOpen)));
  }
  bool is_door() const { return type == ObjectType::kDoor; }
  bool is_open_door() const { return is_door() && state == static_cast<uint8_t>(DoorState::kOpen); }
  bool is_locked_door() const {
    return is_door() && state == static_cast<uint8_t>(DoorState::kLocked);
  }
  /// True if type, colour, state and contents agree (identity is ignored).
  bool SameLook(const Object& o) const {
    return type == o.type && color == o.color && state == o.state && inner_type == o.inner_type &&
           inner_color == o.inner_color && inner_state == o.inner_state;
  }
};

/// Builds an object (identity 0; WorldState::Place assigns one).
inline Object MakeObject(ObjectType type, Color color, uint8_t state = 0) {
  Object o;
  o.type = type;
  o.color = color;
  o.state = state;
  return o;
}

/// Row-major grid of cells with a border of grey walls around it, so that views reaching
/// outside the grid read walls (as Minigrid's Grid.slice does) without bounds checks.
class Grid {
 public:
  Grid() = default;
  /// A width x height grid of empty cells, with `pad` wall cells on every side outside it.
  Grid(int width, int height, int pad = 6);

  int width() const { return width_; }
  int height() const { return height_; }
  int pad() const { return pad_; }
  bool InBounds(int x, int y) const { return x >= 0 && y >= 0 && x < width_ && y < height_; }
  bool InBounds(Pos p) const { return InBounds(p.x, p.y); }

  /// Cell access; (x, y) may lie up to pad() cells outside the grid (reading a wall there).
  const Object& at(int x, int y) const { return cells_[Index(x, y)]; }
  Object& at(int x, int y) { return cells_[Index(x, y)]; }
  const Object& at(Pos p) const { return at(p.x, p.y); }
  Object& at(Pos p) { return at(p.x, p.y); }

  /// Flat index of (x, y) in the padded storage; exposed for tight loops.
  int Index(int x, int y) const { return (y + pad_) * stride_ + (x + pad_); }
  int stride() const { return stride_; }
  const Object* data() const { return cells_.data(); }

  /// Sets the border walls and clears every in-grid cell.
  void Clear();

 private:
  int width_ = 0;
  int height_ = 0;
  int pad_ = 0;
  int stride_ = 0;
  std::vector<Object> cells_;
};

/// The BabyAI room grid: num_rows x num_cols rooms of room_size cells that share walls.
struct RoomLayout {
  int room_size = 0;  ///< side of a room in cells, walls included; 0 if the world has no rooms
  int num_rows = 0;   ///< rooms along y
  int num_cols = 0;   ///< rooms along x

  bool valid() const { return room_size >= 3 && num_rows >= 1 && num_cols >= 1; }
  /// Minigrid's room_from_pos: (col, row) = (x / (rs-1), y / (rs-1)), clamped into the grid of
  /// rooms (the outermost right and bottom walls map to the last room).
  Pos RoomOf(Pos p) const;
  /// Top-left cell of room (col, row).
  Pos RoomTopLeft(int col, int row) const { return {col * (room_size - 1), row * (room_size - 1)}; }
  /// Minigrid's pos_inside for room (col, row): its boundary walls count as inside.
  bool Inside(int col, int row, Pos p) const;
};

/// The full state of an episode's world: everything Minigrid's env holds except the instruction.
struct WorldState {
  Grid grid;                ///< cells
  Pos agent_pos;            ///< agent position
  int agent_dir = 0;        ///< 0 right, 1 down, 2 left, 3 up
  Object carrying;          ///< carried object; empty() if hands are empty
  /// Minigrid's `cur_pos` of the carried object: (-1,-1) after a pickup.
  Pos carrying_pos{-1, -1};
  int step_count = 0;       ///< steps taken this episode
  int max_steps = 100;      ///< truncation limit
  int agent_view_size = 7;  ///< side of the egocentric view; odd and >= 3
  bool see_through_walls = false;  ///< skip the visibility pass (never set by BabyAI)
  RoomLayout rooms;         ///< room grid; rooms.valid() is false for worlds without rooms
  std::string mission;      ///< instruction text
  uint16_t next_id = 1;     ///< next object identity to hand out

  /// Position in front of the agent.
  Pos FrontPos() const {
    Pos d = DirVec(agent_dir);
    return {agent_pos.x + d.x, agent_pos.y + d.y};
  }
  /// Puts an object at p with a fresh identity (replacing what was there).
  void Place(Pos p, Object o) {
    o.id = o.empty() ? 0 : next_id++;
    grid.at(p) = o;
  }
};

/// What one step did. `reward` is Minigrid's environment reward (goal reached); BabyAI's
/// instruction reward is added by the episode layer.
struct StepOutcome {
  float reward = 0.0f;
  bool terminated = false;
  bool truncated = false;
};

/// Applies one action with Minigrid's exact effects and step order (step_count first,
/// truncation last). `action` must be in 0..6.
StepOutcome StepWorld(WorldState& world, Action action);

/// Minigrid's success reward for the current step count: 1 - 0.9 * step_count / max_steps.
inline float SuccessReward(const WorldState& w) {
  return 1.0f - 0.9f * static_cast<float>(w.step_count) / static_cast<float>(w.max_steps);
}

/// Number of bytes of an encoded egocentric observation image (view x view x 3).
inline int ObservationBytes(int view_size) { return view_size * view_size * 3; }

/// Writes the egocentric partial observation into `image` in Minigrid's array order:
/// image[(i * V + j) * 3 + c], i the view column (left to right), j the view row (far to near),
/// c = (type, colour, state). Exact visibility propagation and own-cell rule.
/// Optional `visible` (V*V bools, same [i][j] order) receives the visibility mask.
void Observe(const WorldState& world, uint8_t* image, bool* visible = nullptr);

/// World position seen at view cell (i, j) of the agent's view.
Pos ViewToWorld(const WorldState& world, int i, int j);

/// Encodes the whole grid as Minigrid's FullyObsWrapper does (agent cell = (10, 0, dir)),
/// in [x][y][c] order: out[(x * H + y) * 3 + c].
void EncodeFullGrid(const WorldState& world, uint8_t* out);

}  // namespace skillgrid::envs
