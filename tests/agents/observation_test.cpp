// Tests of agents/observation.cpp: instruction deduplication and the row cuts the update takes.
#include "agents/observation.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

namespace skillgrid::agents {
namespace {

// Six rows, four distinct (task, mission) pairs: rows 0/3 share one, rows 2/5 another; row 4 has
// the longest mission (5 tokens), row 1 the same tokens as row 0 under another task.
Observation SixRows() {
  const at::Tensor images = torch::arange(6 * 7 * 7 * 3).remainder(251).to(at::kByte).view({6, 7, 7, 3});
  const at::Tensor tokens = torch::tensor({3, 4, 0, 0, 0,  //
                                           3, 4, 0, 0, 0,  //
                                           5, 6, 7, 0, 0,  //
                                           3, 4, 0, 0, 0,  //
                                           8, 9, 10, 11, 12,  //
                                           5, 6, 7, 0, 0},
                                          at::kInt)
                                .view({6, 5});
  const at::Tensor lengths = torch::tensor({2, 2, 3, 2, 5, 3}, at::kInt);
  const at::Tensor tasks = torch::tensor({0, 1, 0, 0, 1, 0}, at::kLong);
  return MakeObservation(images, tokens, lengths, tasks);
}

// The tokens of row r's instruction, without padding.
at::Tensor RowTokens(const Observation& o, int64_t r) {
  const int64_t i = o.instr_index[r].item<int64_t>();
  return o.instr_tokens[i].narrow(0, 0, o.instr_lengths[i].item<int64_t>());
}

TEST(Observation, DeduplicatesInstructionsPerTaskAndMission) {
  const Observation o = SixRows();
  EXPECT_EQ(o.size(), 6);
  EXPECT_EQ(o.instr_tokens.size(0), 4);  // (0, "3 4"), (1, "3 4"), (0, "5 6 7"), (1, "8 .. 12")
  EXPECT_EQ(o.instr_index[0].item<int64_t>(), o.instr_index[3].item<int64_t>());
  EXPECT_NE(o.instr_index[0].item<int64_t>(), o.instr_index[1].item<int64_t>());  // other task
  EXPECT_EQ(o.instr_index[2].item<int64_t>(), o.instr_index[5].item<int64_t>());
  for (int64_t r = 0; r < 6; ++r) {
    EXPECT_EQ(o.instr_tasks[o.instr_index[r].item<int64_t>()].item<int64_t>(), o.task_ids[r].item<int64_t>());
  }
}

TEST(Observation, SelectRowsKeepsOnlyTheInstructionsItsRowsUseTrimmedToTheLongest) {
  const Observation all = SixRows();
  const at::Tensor rows = torch::tensor({5, 0, 3}, at::kLong);
  const Observation part = all.SelectRows(rows);
  ASSERT_EQ(part.size(), 3);
  EXPECT_TRUE(torch::equal(part.images, all.images.index_select(0, rows)));
  EXPECT_TRUE(torch::equal(part.task_ids, all.task_ids.index_select(0, rows)));
  EXPECT_EQ(part.instr_tokens.size(0), 2);  // rows 0 and 3 share one instruction
  EXPECT_EQ(part.instr_tokens.size(1), 3);  // "5 6 7" is the longest used; row 4's 5 tokens are not
  for (int64_t k = 0; k < 3; ++k) {
    const int64_t r = rows[k].item<int64_t>();
    EXPECT_TRUE(torch::equal(RowTokens(part, k), RowTokens(all, r))) << "row " << r;
    EXPECT_EQ(part.instr_tasks[part.instr_index[k].item<int64_t>()].item<int64_t>(), all.task_ids[r].item<int64_t>());
  }
  // Every kept instruction has a row (the encoder runs no idle rows).
  EXPECT_EQ(std::get<0>(at::_unique2(part.instr_index)).numel(), part.instr_tokens.size(0));
}

}  // namespace
}  // namespace skillgrid::agents
