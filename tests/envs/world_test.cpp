// Tests for envs/world.cpp: object properties, actions, visibility and encoding.
#include "envs/world.h"

#include <gtest/gtest.h>

#include <vector>

namespace skillgrid::envs {
namespace {

// A width x height room with walls on its border, the agent at (x, y) facing dir.
WorldState Room(int width, int height, Pos agent, int dir) {
  WorldState w;
  w.grid = Grid(width, height);
  for (int x = 0; x < width; ++x) {
    w.Place({x, 0}, MakeObject(ObjectType::kWall, Color::kGrey));
    w.Place({x, height - 1}, MakeObject(ObjectType::kWall, Color::kGrey));
  }
  for (int y = 1; y < height - 1; ++y) {
    w.Place({0, y}, MakeObject(ObjectType::kWall, Color::kGrey));
    w.Place({width - 1, y}, MakeObject(ObjectType::kWall, Color::kGrey));
  }
  w.agent_pos = agent;
  w.agent_dir = dir;
  w.max_steps = 100;
  return w;
}

struct Obs {
  std::vector<uint8_t> image = std::vector<uint8_t>(147);
  const uint8_t* at(int i, int j) const { return &image[(i * 7 + j) * 3]; }
};

Obs See(const WorldState& w) {
  Obs o;
  Observe(w, o.image.data());
  return o;
}

TEST(ObjectTest, PropertiesFollowMinigrid) {
  EXPECT_FALSE(MakeObject(ObjectType::kWall, Color::kGrey).see_behind());
  EXPECT_FALSE(MakeObject(ObjectType::kWall, Color::kGrey).can_overlap());
  EXPECT_TRUE(MakeObject(ObjectType::kGoal, Color::kGreen).can_overlap());
  EXPECT_TRUE(MakeObject(ObjectType::kLava, Color::kRed).can_overlap());
  EXPECT_TRUE(MakeObject(ObjectType::kFloor, Color::kBlue).can_overlap());
  EXPECT_TRUE(MakeObject(ObjectType::kDoor, Color::kRed, 0).can_overlap());
  EXPECT_FALSE(MakeObject(ObjectType::kDoor, Color::kRed, 1).can_overlap());
  EXPECT_FALSE(MakeObject(ObjectType::kDoor, Color::kRed, 1).see_behind());
  EXPECT_FALSE(MakeObject(ObjectType::kDoor, Color::kRed, 2).see_behind());
  EXPECT_TRUE(MakeObject(ObjectType::kBox, Color::kRed).see_behind());
  EXPECT_TRUE(MakeObject(ObjectType::kBox, Color::kRed).can_pickup());
  EXPECT_FALSE(MakeObject(ObjectType::kBall, Color::kRed).can_overlap());
  EXPECT_FALSE(MakeObject(ObjectType::kDoor, Color::kRed).can_pickup());
}

TEST(NamesTest, RoundTrip) {
  for (int t = 0; t <= 10; ++t) {
    ObjectType parsed;
    ASSERT_TRUE(ParseObjectType(ObjectTypeName(static_cast<ObjectType>(t)), &parsed));
    EXPECT_EQ(static_cast<int>(parsed), t);
  }
  Color c;
  EXPECT_TRUE(ParseColor("purple", &c));
  EXPECT_EQ(c, Color::kPurple);
  EXPECT_FALSE(ParseColor("pink", &c));
  EXPECT_EQ(ColorName(kColorsByName[0]), "blue");
  EXPECT_EQ(ColorName(kColorsByName[5]), "yellow");
}

TEST(StepTest, TurnsAndMoves) {
  WorldState w = Room(6, 6, {2, 2}, 0);
  StepWorld(w, Action::kLeft);
  EXPECT_EQ(w.agent_dir, 3);
  StepWorld(w, Action::kRight);
  StepWorld(w, Action::kRight);
  EXPECT_EQ(w.agent_dir, 1);
  StepWorld(w, Action::kForward);
  EXPECT_EQ(w.agent_pos, (Pos{2, 3}));
  StepWorld(w, Action::kForward);
  StepWorld(w, Action::kForward);  // wall at y = 5 blocks
  EXPECT_EQ(w.agent_pos, (Pos{2, 4}));
  EXPECT_EQ(w.step_count, 6);
}

TEST(StepTest, PickupDropAndHandsRule) {
  WorldState w = Room(6, 6, {2, 2}, 0);
  w.Place({3, 2}, MakeObject(ObjectType::kKey, Color::kRed));
  w.Place({2, 3}, MakeObject(ObjectType::kBall, Color::kBlue));
  const uint16_t key_id = w.grid.at(3, 2).id;
  StepWorld(w, Action::kPickup);
  EXPECT_EQ(w.carrying.type, ObjectType::kKey);
  EXPECT_EQ(w.carrying.id, key_id);
  EXPECT_TRUE(w.grid.at(3, 2).empty());
  StepWorld(w, Action::kRight);  // face the ball
  StepWorld(w, Action::kPickup);  // hands full: nothing happens
  EXPECT_EQ(w.grid.at(2, 3).type, ObjectType::kBall);
  StepWorld(w, Action::kDrop);  // cell occupied: nothing happens
  EXPECT_EQ(w.carrying.type, ObjectType::kKey);
  StepWorld(w, Action::kLeft);
  StepWorld(w, Action::kDrop);
  EXPECT_TRUE(w.carrying.empty());
  EXPECT_EQ(w.grid.at(3, 2).id, key_id);
}

TEST(StepTest, CannotDropOntoOpenDoorOrGoal) {
  WorldState w = Room(6, 6, {2, 2}, 0);
  w.Place({3, 2}, MakeObject(ObjectType::kDoor, Color::kRed, 0));
  w.carrying = MakeObject(ObjectType::kBall, Color::kRed);
  StepWorld(w, Action::kDrop);
  EXPECT_EQ(w.carrying.type, ObjectType::kBall);
}

TEST(StepTest, DoorsToggleAndUnlockWithMatchingKey) {
  WorldState w = Room(6, 6, {2, 2}, 0);
  w.Place({3, 2}, MakeObject(ObjectType::kDoor, Color::kYellow, 2));
  StepWorld(w, Action::kToggle);
  EXPECT_EQ(w.grid.at(3, 2).state, 2);  // locked, no key
  w.carrying = MakeObject(ObjectType::kKey, Color::kRed);
  StepWorld(w, Action::kToggle);
  EXPECT_EQ(w.grid.at(3, 2).state, 2);  // wrong colour
  w.carrying = MakeObject(ObjectType::kKey, Color::kYellow);
  StepWorld(w, Action::kToggle);
  EXPECT_EQ(w.grid.at(3, 2).state, 0);  // unlocked and open at once; key kept
  EXPECT_EQ(w.carrying.type, ObjectType::kKey);
  StepWorld(w, Action::kToggle);
  EXPECT_EQ(w.grid.at(3, 2).state, 1);
  StepWorld(w, Action::kForward);
  EXPECT_EQ(w.agent_pos, (Pos{2, 2}));  // closed door blocks
  StepWorld(w, Action::kToggle);
  StepWorld(w, Action::kForward);
  EXPECT_EQ(w.agent_pos, (Pos{3, 2}));  // open door passes
}

TEST(StepTest, BoxToggleRevealsContents) {
  WorldState w = Room(6, 6, {2, 2}, 0);
  Object box = MakeObject(ObjectType::kBox, Color::kPurple);
  box.inner_type = ObjectType::kKey;
  box.inner_color = Color::kGreen;
  w.Place({3, 2}, box);
  StepWorld(w, Action::kToggle);
  EXPECT_EQ(w.grid.at(3, 2).type, ObjectType::kKey);
  EXPECT_EQ(w.grid.at(3, 2).color, Color::kGreen);
  EXPECT_NE(w.grid.at(3, 2).id, 0);
  w.Place({2, 3}, MakeObject(ObjectType::kBox, Color::kRed));
  StepWorld(w, Action::kRight);
  StepWorld(w, Action::kToggle);
  EXPECT_TRUE(w.grid.at(2, 3).empty());  // empty box vanishes
}

TEST(StepTest, GoalRewardLavaAndTruncation) {
  WorldState w = Room(6, 6, {2, 2}, 0);
  w.max_steps = 10;
  w.Place({3, 2}, MakeObject(ObjectType::kGoal, Color::kGreen));
  StepWorld(w, Action::kDone);
  StepOutcome out = StepWorld(w, Action::kForward);
  EXPECT_TRUE(out.terminated);
  EXPECT_NEAR(out.reward, 1.0 - 0.9 * 2 / 10, 1e-6);
  EXPECT_EQ(w.agent_pos, (Pos{3, 2}));

  WorldState l = Room(6, 6, {2, 2}, 0);
  l.Place({3, 2}, MakeObject(ObjectType::kLava, Color::kRed));
  out = StepWorld(l, Action::kForward);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(out.reward, 0.0f);
  EXPECT_EQ(l.agent_pos, (Pos{3, 2}));

  WorldState t = Room(6, 6, {2, 2}, 0);
  t.max_steps = 50;
  for (int k = 1; k <= 50; ++k) {
    out = StepWorld(t, Action::kDrop);
    EXPECT_EQ(out.truncated, k == 50) << k;
  }
}

TEST(ObserveTest, AgentCellAndCarriedObject) {
  WorldState w = Room(9, 9, {4, 4}, 3);
  Obs o = See(w);
  EXPECT_EQ(o.at(3, 6)[0], 1);  // empty hands: empty cell
  w.carrying = MakeObject(ObjectType::kKey, Color::kRed);
  o = See(w);
  EXPECT_EQ(o.at(3, 6)[0], 5);
  EXPECT_EQ(o.at(3, 6)[1], 0);
}

TEST(ObserveTest, ViewOrientationForEveryDirection) {
  // A ball one step ahead must show at view (3, 5), one to the right at (4, 6).
  for (int dir = 0; dir < 4; ++dir) {
    WorldState w = Room(11, 11, {5, 5}, dir);
    Pos f = DirVec(dir);
    Pos r{-f.y, f.x};
    w.Place({5 + f.x, 5 + f.y}, MakeObject(ObjectType::kBall, Color::kBlue));
    w.Place({5 + r.x, 5 + r.y}, MakeObject(ObjectType::kKey, Color::kYellow));
    Obs o = See(w);
    EXPECT_EQ(o.at(3, 5)[0], 6) << "dir " << dir;
    EXPECT_EQ(o.at(4, 6)[0], 5) << "dir " << dir;
    EXPECT_EQ(o.at(4, 6)[1], 4) << "dir " << dir;
    EXPECT_EQ(ViewToWorld(w, 3, 5), (Pos{5 + f.x, 5 + f.y}));
    EXPECT_EQ(ViewToWorld(w, 3, 6), (Pos{5, 5}));
  }
}

TEST(ObserveTest, WallsAndClosedDoorsHideWhatIsBehind) {
  WorldState w = Room(11, 11, {5, 8}, 3);  // facing up
  for (int x = 1; x < 10; ++x) w.Place({x, 6}, MakeObject(ObjectType::kWall, Color::kGrey));
  w.Place({5, 4}, MakeObject(ObjectType::kBall, Color::kRed));
  Obs o = See(w);
  EXPECT_EQ(o.at(3, 4)[0], 2);  // the wall itself is visible
  EXPECT_EQ(o.at(3, 2)[0], 0);  // the ball behind it is unseen
  // An open door lets sight through; a closed one does not.
  w.Place({5, 6}, MakeObject(ObjectType::kDoor, Color::kBlue, 0));
  o = See(w);
  EXPECT_EQ(o.at(3, 4)[0], 4);
  EXPECT_EQ(o.at(3, 4)[2], 0);
  EXPECT_EQ(o.at(3, 2)[0], 6);
  w.grid.at(5, 6).state = 1;
  o = See(w);
  EXPECT_EQ(o.at(3, 4)[2], 1);
  EXPECT_EQ(o.at(3, 2)[0], 0);
}

TEST(ObserveTest, BoxesDoNotBlockSight) {
  WorldState w = Room(11, 11, {5, 8}, 3);
  w.Place({5, 7}, MakeObject(ObjectType::kBox, Color::kGreen));
  w.Place({5, 5}, MakeObject(ObjectType::kBall, Color::kRed));
  Obs o = See(w);
  EXPECT_EQ(o.at(3, 5)[0], 7);
  EXPECT_EQ(o.at(3, 3)[0], 6);
}

TEST(ObserveTest, OutsideTheGridReadsGreyWall) {
  WorldState w;
  w.grid = Grid(5, 5);  // no walls of its own
  w.agent_pos = {2, 2};
  w.agent_dir = 3;  // facing up: view row j shows world y = j - 4
  Obs o = See(w);
  EXPECT_EQ(o.at(3, 4)[0], 1);  // y = 0, inside the grid, empty
  EXPECT_EQ(o.at(3, 3)[0], 2);  // y = -1, outside: a grey wall
  EXPECT_EQ(o.at(3, 3)[1], 5);
  EXPECT_EQ(o.at(3, 2)[0], 0);  // hidden behind that wall
  EXPECT_EQ(o.at(0, 6)[0], 2);  // x = -1, outside on the left
}

TEST(EncodeFullGridTest, AgentCellCarriesDirection) {
  WorldState w = Room(5, 5, {2, 2}, 1);
  std::vector<uint8_t> full(5 * 5 * 3);
  EncodeFullGrid(w, full.data());
  const uint8_t* agent = &full[(2 * 5 + 2) * 3];
  EXPECT_EQ(agent[0], 10);
  EXPECT_EQ(agent[2], 1);
  EXPECT_EQ(full[0], 2);  // (0,0) wall
  EXPECT_EQ(full[(1 * 5 + 1) * 3], 1);  // (1,1) empty
}

}  // namespace
}  // namespace skillgrid::envs
