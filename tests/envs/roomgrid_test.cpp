// Tests for envs/roomgrid.cpp: the room-grid builder (walls, door slots, doors, openings,
// placement rules, connect_all, distractors, the reachability check).
#include "envs/roomgrid.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <utility>
#include <vector>

namespace skillgrid::envs {
namespace {

struct Built {
  WorldState world;
  Rng rng;
  Grid walls;
  uint16_t next_id = 0;
  RoomLayout layout;
  explicit Built(RoomLayout l, uint64_t seed = 1) : rng(seed), layout(l) {
    walls = RoomGrid::MakeWallGrid(layout, &next_id);
  }
  RoomGrid Start() {
    RoomGrid rg(&world, &rng);
    rg.Reset(layout, walls, next_id);
    return rg;
  }
};

bool IsWall(const WorldState& w, int x, int y) { return w.grid.at(x, y).type == ObjectType::kWall; }

TEST(RoomGridTest, WallsAndDefaultPose) {
  Built b({8, 3, 3});
  b.Start();
  const WorldState& w = b.world;
  ASSERT_EQ(w.grid.width(), 22);
  ASSERT_EQ(w.grid.height(), 22);
  std::set<uint16_t> ids;
  for (int y = 0; y < 22; ++y) {
    for (int x = 0; x < 22; ++x) {
      EXPECT_EQ(IsWall(w, x, y), x % 7 == 0 || y % 7 == 0) << x << "," << y;
      if (IsWall(w, x, y)) {
        EXPECT_TRUE(ids.insert(w.grid.at(x, y).id).second);
      }
    }
  }
  EXPECT_EQ(b.next_id, ids.size() + 1);
  EXPECT_EQ(w.agent_pos, (Pos{11, 11}));  // (cols/2)*(rs-1) + rs/2
  EXPECT_EQ(w.agent_dir, 0);
  EXPECT_TRUE(w.rooms.valid());
  EXPECT_TRUE(w.carrying.empty());
}

TEST(RoomGridTest, DoorSlotsAvoidCornersAndAreShared) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Built b({6, 3, 3}, seed);
    RoomGrid rg = b.Start();
    for (int j = 0; j < 3; ++j) {
      for (int i = 0; i < 3; ++i) {
        const Room& r = rg.room(i, j);
        EXPECT_EQ(r.has_neighbor[kSideRight], i < 2);
        EXPECT_EQ(r.has_neighbor[kSideDown], j < 2);
        EXPECT_EQ(r.has_neighbor[kSideLeft], i > 0);
        EXPECT_EQ(r.has_neighbor[kSideUp], j > 0);
        if (i < 2) {
          const Pos p = r.door_pos[kSideRight];
          EXPECT_EQ(p.x, r.top.x + 5);
          EXPECT_GE(p.y, r.top.y + 1);
          EXPECT_LE(p.y, r.top.y + 4);
          EXPECT_EQ(rg.room(i + 1, j).door_pos[kSideLeft], p);
        }
        if (j < 2) {
          const Pos p = r.door_pos[kSideDown];
          EXPECT_EQ(p.y, r.top.y + 5);
          EXPECT_GE(p.x, r.top.x + 1);
          EXPECT_LE(p.x, r.top.x + 4);
          EXPECT_EQ(rg.room(i, j + 1).door_pos[kSideUp], p);
        }
      }
    }
  }
}

TEST(RoomGridTest, AddDoorMarksBothRoomsAndSetsLockedEveryCall) {
  Built b({8, 3, 3});
  RoomGrid rg = b.Start();
  const Pos p = rg.AddDoor(1, 1, kSideRight, Color::kRed, true);
  EXPECT_EQ(p, rg.room(1, 1).door_pos[kSideRight]);
  const Object& d = b.world.grid.at(p);
  EXPECT_EQ(d.type, ObjectType::kDoor);
  EXPECT_EQ(d.color, Color::kRed);
  EXPECT_TRUE(d.is_locked_door());
  EXPECT_NE(d.id, 0);
  EXPECT_EQ(rg.room(1, 1).side[kSideRight], RoomSide::kDoor);
  EXPECT_EQ(rg.room(2, 1).side[kSideLeft], RoomSide::kDoor);
  EXPECT_TRUE(rg.room(1, 1).locked);
  EXPECT_FALSE(rg.room(2, 1).locked);  // the neighbour's flag is untouched
  // Upstream quirk: any later add_door on the room resets the flag.
  rg.AddDoor(1, 1, kSideDown, Color::kBlue, false);
  EXPECT_FALSE(rg.room(1, 1).locked);
  EXPECT_EQ(b.world.grid.at(rg.room(1, 1).door_pos[kSideDown]).state,
            static_cast<uint8_t>(DoorState::kClosed));
  // An occupied side or one without a neighbour is a programming error.
  EXPECT_THROW(rg.AddDoor(1, 1, kSideRight), std::logic_error);
  EXPECT_THROW(rg.AddDoor(0, 0, kSideLeft), std::logic_error);
  EXPECT_EQ(rg.LockedDoorColors(), 1u << static_cast<int>(Color::kRed));
}

TEST(RoomGridTest, RandomDoorsFillEveryFreeSide) {
  Built b({7, 3, 3});
  RoomGrid rg = b.Start();
  for (int k = 0; k < 4; ++k) rg.AddDoor(1, 1);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(rg.room(1, 1).side[k], RoomSide::kDoor);
  EXPECT_THROW(rg.AddDoor(1, 1), std::logic_error);
  Pos doors[16];
  EXPECT_EQ(rg.CollectDoors(doors, 16), 8);  // each door listed by both of its rooms
}

TEST(RoomGridTest, RemoveWallOpensTheWallButNotItsCorners) {
  Built b({5, 1, 2});
  RoomGrid rg = b.Start();
  rg.RemoveWall(0, 0, kSideRight);
  const WorldState& w = b.world;
  EXPECT_TRUE(IsWall(w, 4, 0));
  EXPECT_TRUE(IsWall(w, 4, 4));
  for (int y = 1; y <= 3; ++y) EXPECT_TRUE(w.grid.at(4, y).empty());
  EXPECT_EQ(rg.room(0, 0).side[kSideRight], RoomSide::kOpening);
  EXPECT_EQ(rg.room(1, 0).side[kSideLeft], RoomSide::kOpening);
  EXPECT_THROW(rg.AddDoor(0, 0, kSideRight), std::logic_error);
}

TEST(RoomGridTest, PlaceInRoomKeepsAwayFromTheAgent) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Built b({6, 2, 2}, seed);
    RoomGrid rg = b.Start();
    const Pos agent = b.world.agent_pos;
    const Pos p = rg.AddObject(1, 1);
    EXPECT_GE(std::abs(p.x - agent.x) + std::abs(p.y - agent.y), 2);
    const Pos top = b.world.rooms.RoomTopLeft(1, 1);
    EXPECT_GT(p.x, top.x);
    EXPECT_GT(p.y, top.y);
    EXPECT_LT(p.x, top.x + 5);
    EXPECT_LT(p.y, top.y + 5);
    const ObjectType t = b.world.grid.at(p).type;
    EXPECT_TRUE(t == ObjectType::kKey || t == ObjectType::kBall || t == ObjectType::kBox);
  }
}

TEST(RoomGridTest, PlaceInRoomIsUniformOverFreeCells) {
  // A 5x5 room with the agent in the middle: only the four interior corners are free.
  std::map<std::pair<int, int>, int> counts;
  Built b({5, 1, 1}, 9);
  for (int i = 0; i < 4000; ++i) {
    RoomGrid rg = b.Start();
    ASSERT_EQ(b.world.agent_pos, (Pos{2, 2}));
    const Pos p = rg.AddObject(0, 0);
    ++counts[{p.x, p.y}];
  }
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& kv : counts) {
    EXPECT_TRUE(std::abs(kv.first.first - 2) == 1 && std::abs(kv.first.second - 2) == 1);
    EXPECT_NEAR(kv.second, 1000, 150);
  }
}

TEST(RoomGridTest, PlacementUsesOpenings) {
  // KeyCorridorS3R3: rooms of size 3 have a single interior cell; with the corridor's walls
  // removed the agent may stand on the opened cells too.
  std::set<std::pair<int, int>> cells;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Built b({3, 3, 3}, seed);
    RoomGrid rg = b.Start();
    rg.RemoveWall(1, 1, kSideUp);
    rg.RemoveWall(1, 2, kSideUp);
    rg.PlaceAgent(1, 1);
    cells.insert({b.world.agent_pos.x, b.world.agent_pos.y});
  }
  const std::set<std::pair<int, int>> expected = {{3, 2}, {3, 3}, {3, 4}};
  EXPECT_EQ(cells, expected);
}

TEST(RoomGridTest, PlaceAgentFacesEmptyOrWall) {
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Built b({6, 1, 1}, seed);
    RoomGrid rg = b.Start();
    Pos d[10];
    rg.AddDistractors(RoomGrid::kRandom, RoomGrid::kRandom, 10, false, d);
    rg.PlaceAgent();
    const WorldState& w = b.world;
    EXPECT_TRUE(w.grid.at(w.agent_pos).empty());
    const Object& f = w.grid.at(w.FrontPos());
    EXPECT_TRUE(f.empty() || f.type == ObjectType::kWall);
  }
}

TEST(RoomGridTest, AddDistractorsAllUniqueAndCounts) {
  Built b({8, 3, 3}, 5);
  RoomGrid rg = b.Start();
  rg.AddObject(0, 0, ObjectType::kKey, Color::kRed);
  Pos d[17];
  rg.AddDistractors(RoomGrid::kRandom, RoomGrid::kRandom, 17, true, d);
  std::set<std::pair<int, int>> looks = {{int(ObjectType::kKey), int(Color::kRed)}};
  for (const Pos& p : d) {
    const Object& o = b.world.grid.at(p);
    EXPECT_TRUE(looks.insert({int(o.type), int(o.color)}).second) << "duplicate look";
  }
  EXPECT_EQ(looks.size(), 18u);
  // No 19th distinct object exists: the builder gives up with GenerationError.
  EXPECT_THROW(rg.AddDistractors(0, 0, 1, true, d), GenerationError);
}

TEST(RoomGridTest, ConnectAllJoinsEveryRoomAndSkipsLockedRooms) {
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Built b({8, 3, 3}, seed);
    RoomGrid rg = b.Start();
    rg.AddDoor(0, 0, kSideRight, Color::kYellow, true);  // room (0, 0) is locked
    rg.ConnectAll();
    EXPECT_EQ(rg.room(0, 0).side[kSideDown], RoomSide::kWall) << "locked rooms get no doors";
    EXPECT_EQ(rg.room(0, 1).side[kSideUp], RoomSide::kWall);
    // Every room reachable from the agent's through doors.
    std::set<int> seen = {4};
    std::vector<int> stack = {4};
    while (!stack.empty()) {
      const int r = stack.back();
      stack.pop_back();
      for (int k = 0; k < 4; ++k) {
        if (rg.room(r % 3, r / 3).side[k] == RoomSide::kWall) continue;
        const int n = r + DirVec(k).x + 3 * DirVec(k).y;
        if (seen.insert(n).second) stack.push_back(n);
      }
    }
    EXPECT_EQ(seen.size(), 9u);
    int locked = 0;
    for (int y = 0; y < 22; ++y) {
      for (int x = 0; x < 22; ++x) locked += b.world.grid.at(x, y).is_locked_door();
    }
    EXPECT_EQ(locked, 1) << "connect_all adds unlocked doors only";
  }
}

TEST(RoomGridTest, ConnectAllGivesUpWhenImpossible) {
  Built b({5, 1, 2});
  RoomGrid rg = b.Start();
  rg.AddDoor(1, 0, kSideLeft, Color::kRed, true);
  // The only possible door exists and both rooms already connect: nothing to do.
  EXPECT_NO_THROW(rg.ConnectAll());
  Built c({5, 1, 3});
  RoomGrid rg2 = c.Start();
  rg2.AddDoor(1, 0, kSideLeft, Color::kRed, true);  // the middle room is locked
  // The right room can only join through the locked middle room.
  EXPECT_THROW(rg2.ConnectAll(), GenerationError);
}

TEST(RoomGridTest, ReachabilityMatchesTheCellFloodFill) {
  // Random worlds of every kind of layout: the bit-parallel check agrees with the flood fill.
  const RoomLayout layouts[] = {{8, 1, 1}, {5, 1, 1}, {8, 3, 3}, {4, 3, 3},
                                {6, 1, 2}, {3, 3, 3}, {5, 2, 3}, {20, 1, 1}};
  int unreachable = 0, total = 0;
  for (const RoomLayout& l : layouts) {
    for (uint64_t seed = 0; seed < 300; ++seed) {
      Built b(l, seed);
      RoomGrid rg = b.Start();
      Rng& rng = b.rng;
      if (l.num_cols >= 2 && rng.Bool()) rg.RemoveWall(0, 0, kSideRight);
      if (l.num_rows * l.num_cols > 1) {
        try {
          rg.ConnectAll();
        } catch (const GenerationError&) {
        }
      }
      const int rooms = l.num_rows * l.num_cols;
      const int n = rng.Int(1, std::min(40, 3 * (l.room_size - 2) * rooms / 2 + 2));
      std::vector<Pos> d(static_cast<size_t>(n));
      try {
        rg.AddDistractors(RoomGrid::kRandom, RoomGrid::kRandom, n, false, d.data());
        rg.PlaceAgent();
      } catch (const GenerationError&) {
        continue;
      }
      const bool fast = rg.CheckObjsReachable();
      EXPECT_EQ(fast, rg.CheckObjsReachableByCells())
          << "layout rs " << l.room_size << " seed " << seed;
      unreachable += !fast;
      ++total;
    }
  }
  EXPECT_GT(unreachable, total / 10);  // both outcomes are exercised
  EXPECT_LT(unreachable, total);
}

TEST(RoomGridTest, EnclosedObjectIsUnreachable) {
  Built b({7, 1, 1});
  RoomGrid rg = b.Start();  // agent at (3, 3)
  rg.Place({1, 1}, MakeObject(ObjectType::kBall, Color::kRed));
  EXPECT_TRUE(rg.CheckObjsReachable());
  rg.Place({2, 1}, MakeObject(ObjectType::kBox, Color::kRed));
  rg.Place({1, 2}, MakeObject(ObjectType::kKey, Color::kRed));
  // The ball at (1, 1) is closed in by the box, the key and the walls.
  EXPECT_FALSE(rg.CheckObjsReachable());
  EXPECT_FALSE(rg.CheckObjsReachableByCells());
  // A door in the way is passable, even locked.
  Built c({5, 1, 2});
  RoomGrid rg2 = c.Start();  // agent in the right room
  rg2.AddDoor(0, 0, kSideRight, Color::kRed, true);
  rg2.Place({1, 1}, MakeObject(ObjectType::kBall, Color::kRed));
  EXPECT_TRUE(rg2.CheckObjsReachable());
}

TEST(RoomGridTest, FullRoomRaisesGenerationError) {
  Built b({3, 1, 1});
  RoomGrid rg = b.Start();  // the only interior cell is the agent's
  EXPECT_THROW(rg.AddObject(0, 0), GenerationError);
}

TEST(RoomGridTest, SameSeedSameWorld) {
  auto build = [](uint64_t seed) {
    Built b({8, 3, 3}, seed);
    RoomGrid rg = b.Start();
    rg.PlaceAgent();
    rg.ConnectAll();
    Pos d[18];
    rg.AddDistractors(RoomGrid::kRandom, RoomGrid::kRandom, 18, false, d);
    std::vector<int> cells;
    for (int y = 0; y < 22; ++y) {
      for (int x = 0; x < 22; ++x) {
        const Object& o = b.world.grid.at(x, y);
        cells.push_back(int(o.type) * 100 + int(o.color) * 10 + o.state);
      }
    }
    cells.push_back(b.world.agent_pos.x);
    cells.push_back(b.world.agent_pos.y);
    cells.push_back(b.world.agent_dir);
    return cells;
  };
  EXPECT_EQ(build(7), build(7));
  EXPECT_NE(build(7), build(8));
}

}  // namespace
}  // namespace skillgrid::envs
