// Umbrella header of the skills library: routed skill modules and their helpers.
#pragma once

#include "skills/bench_skills.h"
#include "skills/expert_allocation.h"
#include "skills/introspection.h"
#include "skills/inventory.h"
#include "skills/router.h"
#include "skills/skill_conv_embedding.h"
#include "skills/skill_linear.h"
#include "skills/skill_rnn_cells.h"
#include "skills/task_batch.h"
#include "skills/training_helpers.h"
