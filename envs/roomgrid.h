// The BabyAI room-grid builder (Minigrid's RoomGrid, minigrid/core/roomgrid.py): rooms that
// share walls, one door slot drawn per shared wall, doors, openings, objects, agent placement,
// connect_all, distractors and the reachability check. It writes straight into a WorldState
// (objects get identities through WorldState::Place) and draws from a caller's Rng.
// See ../shared/reference/minigrid-semantics.md sections 6-8.
//
// Everything is fixed-size: building a world allocates nothing once the world's grid has its
// size. Running out of tries raises GenerationError (Python's RecursionError), which a level's
// generation loop catches to start over (rejection sampling); nothing here exits or aborts.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "envs/rng.h"
#include "envs/world.h"

namespace skillgrid::envs {

/// A generation step ran out of tries (place_obj, place_agent, connect_all, add_distractors,
/// LevelGen's rand_obj): the level discards the sample and generates again.
class GenerationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a side of a room holds (Minigrid's room.doors entry: None, a Door, or True).
enum class RoomSide : uint8_t {
  kWall = 0,     ///< plain wall (a door slot may still lie on it)
  kDoor = 1,     ///< a door on the side's slot
  kOpening = 2,  ///< the wall was removed (remove_wall)
};

/// Side indices, Minigrid's order.
inline constexpr int kSideRight = 0;
inline constexpr int kSideDown = 1;
inline constexpr int kSideLeft = 2;
inline constexpr int kSideUp = 3;

/// One room of the grid (Minigrid's Room) by value; rooms are identified by (col, row).
struct Room {
  Pos top;                             ///< top-left wall cell
  std::array<bool, 4> has_neighbor{};  ///< right, down, left, up
  std::array<Pos, 4> door_pos{};       ///< door slot of each side with a neighbour
  std::array<RoomSide, 4> side{};      ///< what each side holds now
  bool locked = false;                 ///< Minigrid's room.locked (see AddDoor)
};

/// Uniform index in [0, n); draws nothing when n == 1.
inline int RandIndex(Rng& rng, int n) { return n <= 1 ? 0 : rng.Int(0, n); }
/// Minigrid's _rand_color: a uniform colour (COLOR_NAMES order).
inline Color RandColor(Rng& rng) { return kColorsByName[rng.Int(0, kNumColors)]; }

/// Builds one room-grid world. Bind it to a world and an Rng, call Reset, then the helpers in
/// the order a level's gen_mission calls them.
class RoomGrid {
 public:
  static constexpr int kMaxRooms = 16;    ///< rows * cols limit
  static constexpr int kMaxObjects = 64;  ///< objects placed with PlaceInRoom per episode
  static constexpr int kMaxBitRows = 64;  ///< grids up to 64x64 use the bit-parallel check
  static constexpr int kRandom = -1;      ///< "draw it" for room and side indices

  /// Binds the builder; nothing is drawn or written until Reset.
  RoomGrid(WorldState* world, Rng* rng) : w_(world), rng_(rng) {}

  /// The walls of every room of `layout` (no doors), walls numbered 1..n in row-major order;
  /// *next_id receives n + 1. Levels build this once and pass it to every Reset.
  static Grid MakeWallGrid(const RoomLayout& layout, uint16_t* next_id);

  /// Minigrid's RoomGrid._gen_grid: copies `walls` (MakeWallGrid of this layout) into
  /// the world, draws every door slot (rows outer, columns inner; right then down), puts the
  /// agent at the default centre facing right, and resets the rest of the world: empty hands,
  /// step 0, view 7, no mission. Throws std::invalid_argument for a layout over the limits.
  void Reset(const RoomLayout& layout, const Grid& walls, uint16_t next_id);

  int num_rows() const { return layout_.num_rows; }
  int num_cols() const { return layout_.num_cols; }
  int room_size() const { return layout_.room_size; }
  const RoomLayout& layout() const { return layout_; }
  /// Room (col, row).
  const Room& room(int col, int row) const { return rooms_[row * layout_.num_cols + col]; }
  /// Minigrid's room_from_pos as (col, row): shared walls map to the right or lower room.
  Pos RoomFromPos(Pos p) const { return layout_.RoomOf(p); }

  /// Minigrid's place_in_room: a random free cell of room (col, row) (its openings included),
  /// not the agent's cell nor next to it (reject_next_to), at most 1000 tries. Records the
  /// object for AddDistractors' uniqueness test. Returns the cell.
  Pos PlaceInRoom(int col, int row, const Object& obj);

  /// Minigrid's add_object: kind kEmpty draws key, ball or box; no colour draws one.
  Pos AddObject(int col, int row, ObjectType kind = ObjectType::kEmpty,
                std::optional<Color> color = std::nullopt);

  /// Minigrid's add_door: side kRandom draws sides until one has a neighbour and no door; the
  /// colour and the lock are drawn when not given. The door is closed (or locked). Sets this
  /// room's `locked` to `locked` on every call (upstream behaviour). Returns the door cell.
  /// Throws std::logic_error if the side has no neighbour or already a door.
  Pos AddDoor(int col, int row, int side = kRandom, std::optional<Color> color = std::nullopt,
              std::optional<bool> locked = std::nullopt);

  /// Minigrid's remove_wall: clears the wall's interior cells (not its corners) and marks both
  /// rooms as joined by an opening.
  void RemoveWall(int col, int row, int side);

  /// Minigrid's RoomGrid.place_agent: room drawn when not given (column, then row); a random
  /// free cell and direction, redrawn until the cell in front is empty or a wall.
  void PlaceAgent(int col = kRandom, int row = kRandom);

  /// Minigrid's connect_all: adds unlocked doors (colours drawn from `colors`) between random
  /// rooms until every room is reachable from the agent's room through doors and openings.
  /// Locked rooms (Room::locked) get no new doors. Throws GenerationError after max_itrs.
  void ConnectAll(const Color* colors = kColorsByName.data(), int num_colors = kNumColors,
                  int max_itrs = 5000);

  /// Minigrid's add_distractors: n random objects (colour, then kind), each in room
  /// (col, row) or, where kRandom, in a random room (column, then row). With all_unique, a
  /// (kind, colour) pair already placed anywhere is redrawn. Writes the cells to out[0..n).
  void AddDistractors(int col, int row, int n, bool all_unique, Pos* out);

  /// Minigrid's check_objs_reachable: every non-wall object can be reached from the agent
  /// over empty cells and doors (locked ones included) without moving anything.
  /// Bit-parallel over rows for grids up to 64x64 (else CheckObjsReachableByCells).
  bool CheckObjsReachable() const;
  /// The same check by a cell-by-cell flood fill (large grids; the reference for tests).
  bool CheckObjsReachableByCells() const;

  /// Opens every door of the grid (RoomGridLevel.open_all_doors).
  void OpenAllDoors();

  /// The cells of every door, rooms by column then row, each room's sides in order; a door
  /// appears once per room it borders (as Minigrid's room.doors lists do). Returns the count.
  int CollectDoors(Pos* out, int capacity) const;

  /// The cells holding an object other than a wall (doors included), row by row. Writes at
  /// most `capacity`; returns the count.
  int ObjectCells(Pos* out, int capacity) const;

  /// Colours of every locked door, as a bit set over Color values.
  uint32_t LockedDoorColors() const;

  /// Writes one cell (an object gets a fresh identity), as upstream's grid.set: no room
  /// bookkeeping. Every cell write during generation must go through RoomGrid (Place and the
  /// helpers above) so that the reachability bit masks stay right.
  void Place(Pos p, const Object& obj);
  /// Recolours the object at p (GoToRedBallGrey's distractors).
  void SetColor(Pos p, Color color) { w_->grid.at(p).color = color; }

  /// The world being built (read-only: write through Place and the helpers).
  const WorldState& world() const { return *w_; }
  Rng& rng() { return *rng_; }

 private:
  Room& mutable_room(int col, int row) { return rooms_[row * layout_.num_cols + col]; }
  // place_obj over [x0, x1) x [y0, y1): a uniform free cell, not the agent's, optionally not
  // next to it, by upstream's rejection loop (GenerationError after max_tries).
  Pos PlaceObj(int x0, int x1, int y0, int y1, bool reject_near_agent, int max_tries);
  // CheckObjsReachable for grids of at most 64 cells: one 64-bit board.
  bool CheckObjsReachableSmall() const;
  // Bit set of the rooms (row * cols + col) joined to room `start` by doors and openings.
  uint32_t RoomsReachableFrom(Pos start) const;
  // The sampling rectangle of a room: its interior plus any removed wall.
  void RoomRect(int col, int row, int* x0, int* x1, int* y0, int* y1) const;

  struct Placed {
    ObjectType type;
    Color color;
  };

  WorldState* w_;
  Rng* rng_;
  // Per-row bit masks of the grid (x = bit), kept by every cell write when the grid fits in
  // 64x64: non-empty cells, walls, doors.
  bool use_bits_ = false;
  std::array<uint64_t, kMaxBitRows> occupied_{};
  std::array<uint64_t, kMaxBitRows> walls_{};
  std::array<uint64_t, kMaxBitRows> doors_{};
  RoomLayout layout_;
  std::array<Room, kMaxRooms> rooms_{};
  std::array<Placed, kMaxObjects> objs_{};
  int num_objs_ = 0;
};

}  // namespace skillgrid::envs
