// Smoke test of the skills benchmark; the full-size run is opt-in (SKILLGRID_RUN_SKILLS_BENCH=1).
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "skills/bench_skills.h"

namespace skillgrid::skills {
namespace {

TEST(SkillsBench, SmallRunPrintsEveryConfigurationAndTheRatio) {
  SkillsBenchOptions options;
  options.in_features = 16;
  options.out_features = 16;
  options.batch = 64;
  options.iterations = 2;
  options.warmup = 1;
  std::ostringstream progress;
  const auto result = RunSkillsBench(options, progress);
  EXPECT_EQ(result.entries.size(), 3u * 7u);  // 3 inventories x 7 routers (expert included at 8 tasks, 9 skills)
  EXPECT_GT(result.plain_ms, 0);
  EXPECT_GT(result.poly_lowrank_vs_plain, 0);
  EXPECT_NE(progress.str().find("poly_lowrank_vs_plain: "), std::string::npos);
  EXPECT_NE(progress.str().find("skills sparse/adamix: "), std::string::npos);
}


}  // namespace
}  // namespace skillgrid::skills
