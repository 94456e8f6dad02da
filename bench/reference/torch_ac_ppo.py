#!/usr/bin/env python3
"""The Python reference stack's training loop, timed on this machine with free environments.

Issue 5 compares `skillgrid bench train` with the Python stack users run today: torch-ac's PPO
(BabyAI's own copy of it for bow_endpool_res) with rl-starter-files' small ACModel or BabyAI 1.1's
bow_endpool_res. That stack cannot be installed here (no PyPI), but Debian 12 ships PyTorch 1.13
(`apt-get install python3-torch`). This script is our own re-implementation of that loop, written
from the published algorithm and architectures, run on Debian's PyTorch:

  * per rollout step: the observations are batched and the instructions tokenised in Python
    (a regex and a vocabulary lookup per env, as the reference's preprocessing does), one
    no-grad forward of the whole batch, a categorical sample;
  * GAE over the rollout in a Python loop, then the experiences flattened;
  * per epoch and minibatch: the recurrence loop (one forward per step of each sequence, the
    memory written back for the next step), clipped policy and value losses and entropy, one
    backward, gradient-norm clipping, Adam.

The environments cost nothing here: each step draws a pre-made observation, instruction and
reward (episodes end with probability 1/64 per step, so the masks cut sequences as real
episodes do). The figure it prints is therefore an upper bound on the reference's frames/s on
this machine; the real stack also steps Minigrid in Python (multiprocess envs on the same cores).

Usage:  python3 bench/reference/torch_ac_ppo.py --model small|bow_endpool_res [--updates N]
Prints `frames_per_sec: X` like `skillgrid bench train`, with the same defaults (BabyAI
hyperparameters: 64 envs x 40 frames, recurrence 20, 4 epochs, batch 1280).
"""

import argparse
import os
import re
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_ACTIONS = 7
WORDS = ("go to the a red green blue purple yellow grey ball box key door "
         "pick up put next open and then after you").split()
INSTRUCTIONS = [
    "go to the red ball", "go to a grey key", "pick up the blue box",
    "put the green ball next to the purple key", "open the yellow door",
    "go to the red ball and then pick up a grey box",
    "pick up the key after you open the blue door", "go to a purple door",
]


def init_linear(module):
    # BabyAI / rl-starter-files initialisation: normal rows scaled to unit norm, zero bias.
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(0, 1)
        module.weight.data *= 1 / torch.sqrt(module.weight.data.pow(2).sum(1, keepdim=True))
        if module.bias is not None:
            module.bias.data.fill_(0)


class Heads(nn.Module):
    """Actor and critic MLPs (embedding -> 64 -> tanh -> actions | value)."""

    def __init__(self, embedding):
        super().__init__()
        self.actor = nn.Sequential(nn.Linear(embedding, 64), nn.Tanh(), nn.Linear(64, NUM_ACTIONS))
        self.critic = nn.Sequential(nn.Linear(embedding, 64), nn.Tanh(), nn.Linear(64, 1))

    def forward(self, x):
        return torch.distributions.Categorical(logits=F.log_softmax(self.actor(x), dim=1)), \
            self.critic(x).squeeze(1)


class SmallModel(nn.Module):
    """rl-starter-files' ACModel with memory and text: 2x2 convs 16/32/64 with a max-pool,
    LSTMCell(64, 64), word embedding 32 and GRU(32, 128), heads on [memory h, instruction]."""

    def __init__(self, vocab):
        super().__init__()
        self.image_conv = nn.Sequential(
            nn.Conv2d(3, 16, 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 2), nn.ReLU(), nn.Conv2d(32, 64, 2), nn.ReLU())
        self.memory_rnn = nn.LSTMCell(64, 64)
        self.word_embedding = nn.Embedding(vocab, 32)
        self.text_rnn = nn.GRU(32, 128, batch_first=True)
        self.heads = Heads(64 + 128)
        self.apply(init_linear)
        self.memory_size = 2 * 64

    def forward(self, image, text, memory):
        x = self.image_conv(image.transpose(1, 3).transpose(2, 3)).reshape(image.shape[0], -1)
        h, c = self.memory_rnn(x, (memory[:, :64], memory[:, 64:]))
        _, hidden = self.text_rnn(self.word_embedding(text))
        dist, value = self.heads(torch.cat((h, hidden[-1]), dim=1))
        return dist, value, torch.cat((h, c), dim=1)


class FiLMBlock(nn.Module):
    """BabyAI's FiLM controller: conv-bn-relu, conv-bn of (x * gamma + beta), relu."""

    def __init__(self, channels, instr):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 128, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(128)
        self.conv2 = nn.Conv2d(128, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.weight = nn.Linear(instr, channels)
        self.bias = nn.Linear(instr, channels)

    def forward(self, x, y):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv2(x)
        out = x * self.weight(y).unsqueeze(2).unsqueeze(3) + self.bias(y).unsqueeze(2).unsqueeze(3)
        return F.relu(self.bn2(out))


class BowEndpoolRes(nn.Module):
    """BabyAI 1.1's bow_endpool_res: bag-of-words tile embedding 128, two 3x3 conv-bn-relu, two
    residual FiLM blocks on a GRU(128) instruction, 7x7 max-pool, LSTMCell(128, 128), heads."""

    MAX_VALUE = 147

    def __init__(self, vocab):
        super().__init__()
        self.bow = nn.Embedding(3 * self.MAX_VALUE, 128)
        self.stem = nn.Sequential(
            nn.Conv2d(128, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU())
        self.word_embedding = nn.Embedding(vocab, 128)
        self.instr_rnn = nn.GRU(128, 128, batch_first=True)
        self.films = nn.ModuleList([FiLMBlock(128, 128) for _ in range(2)])
        self.memory_rnn = nn.LSTMCell(128, 128)
        self.heads = Heads(128)
        self.apply(init_linear)
        self.memory_size = 2 * 128
        self.register_buffer("offsets", torch.arange(3) * self.MAX_VALUE)

    def forward(self, image, text, memory):
        x = self.bow(image.long() + self.offsets).sum(3).permute(0, 3, 1, 2)
        x = self.stem(x)
        _, hidden = self.instr_rnn(self.word_embedding(text))
        instr = hidden[-1]
        for film in self.films:
            x = x + film(x, instr)
        x = F.relu(F.max_pool2d(x, 7, 2)).reshape(x.shape[0], -1)
        h, c = self.memory_rnn(x, (memory[:, :128], memory[:, 128:]))
        dist, value = self.heads(h)
        return dist, value, torch.cat((h, c), dim=1)


class FreeEnvs:
    """num_envs environments whose steps cost nothing: observations, rewards and episode ends
    are drawn from pre-made pools with a seeded generator."""

    def __init__(self, num_envs, seed):
        self.rng = np.random.default_rng(seed)
        self.num_envs = num_envs
        pool = 1024
        images = np.stack([self.rng.integers(0, 11, (pool, 7, 7)), self.rng.integers(0, 6, (pool, 7, 7)),
                           self.rng.integers(0, 3, (pool, 7, 7))], axis=3).astype(np.uint8)
        self.pool = [{"image": images[i], "mission": INSTRUCTIONS[i % len(INSTRUCTIONS)]} for i in range(pool)]

    def step(self):
        picks = self.rng.integers(0, len(self.pool), self.num_envs)
        done = self.rng.random(self.num_envs) < 1 / 64
        reward = np.where(done, 1 - 0.9 * self.rng.random(self.num_envs), 0.0)
        return [self.pool[i] for i in picks], reward, done


class Vocabulary:
    """Word ids assigned on first sight, as the reference's preprocessing does."""

    def __init__(self):
        self.ids = {}

    def __getitem__(self, word):
        if word not in self.ids:
            self.ids[word] = len(self.ids) + 1
        return self.ids[word]


def preprocess(obss, vocab):
    images = torch.tensor(np.array([o["image"] for o in obss]), dtype=torch.float)
    tokens = [[vocab[w] for w in re.findall("([a-z]+)", o["mission"].lower())] for o in obss]
    text = np.zeros((len(tokens), max(len(t) for t in tokens)), dtype=np.int64)
    for i, t in enumerate(tokens):
        text[i, :len(t)] = t
    return images, torch.tensor(text)


class PPO:
    """torch-ac's PPOAlgo loop with BabyAI's hyperparameters."""

    def __init__(self, model, envs, args):
        self.model, self.envs, self.a = model, envs, args
        self.vocab = Vocabulary()
        self.opt = torch.optim.Adam(model.parameters(), args.lr, eps=1e-5)
        n, t = args.num_envs, args.frames_per_env
        self.obs, _, _ = envs.step()
        self.memory = torch.zeros(n, model.memory_size)
        self.mask = torch.ones(n)
        self.store = {k: [None] * t for k in ("image", "text", "memory", "mask", "action", "value",
                                             "reward", "log_prob")}

    def collect(self):
        a, s = self.a, self.store
        for i in range(a.frames_per_env):
            image, text = preprocess(self.obs, self.vocab)
            with torch.no_grad():
                dist, value, memory = self.model(image, text, self.memory * self.mask.unsqueeze(1))
            action = dist.sample()
            obs, reward, done = self.envs.step()
            s["image"][i], s["text"][i], s["memory"][i], s["mask"][i] = image, text, self.memory, self.mask
            s["action"][i], s["value"][i], s["log_prob"][i] = action, value, dist.log_prob(action)
            s["reward"][i] = torch.tensor(reward * a.reward_scale, dtype=torch.float)
            self.obs, self.memory = obs, memory
            self.mask = 1 - torch.tensor(done, dtype=torch.float)
        image, text = preprocess(self.obs, self.vocab)
        with torch.no_grad():
            _, next_value, _ = self.model(image, text, self.memory * self.mask.unsqueeze(1))
        adv = [None] * a.frames_per_env
        last = torch.zeros(a.num_envs)
        for i in reversed(range(a.frames_per_env)):
            next_mask = s["mask"][i + 1] if i < a.frames_per_env - 1 else self.mask
            next_v = s["value"][i + 1] if i < a.frames_per_env - 1 else next_value
            delta = s["reward"][i] + a.gamma * next_v * next_mask - s["value"][i]
            last = delta + a.gamma * a.lam * last * next_mask
            adv[i] = last
        # (T, N) -> N * T rows, each env's frames contiguous, as torch-ac flattens them.
        flat = lambda xs: torch.stack(xs).transpose(0, 1).reshape(-1, *xs[0].shape[1:])
        width = max(t.shape[1] for t in s["text"])
        texts = [F.pad(t, (0, width - t.shape[1])) for t in s["text"]]
        exps = {k: flat(s[k]) for k in ("image", "memory", "mask", "action", "value", "log_prob")}
        exps["text"] = flat(texts)
        exps["advantage"] = flat(adv)
        exps["returnn"] = exps["value"] + exps["advantage"]
        return exps

    def update(self, exps):
        a = self.a
        total = a.num_envs * a.frames_per_env
        for _ in range(a.epochs):
            starts = np.random.permutation(np.arange(0, total, a.recurrence))
            per_batch = a.batch_size // a.recurrence
            for b in range(0, len(starts), per_batch):
                inds = torch.from_numpy(starts[b:b + per_batch])
                memory = exps["memory"][inds]
                loss = 0
                for i in range(a.recurrence):
                    sb = {k: v[inds + i] for k, v in exps.items()}
                    dist, value, memory = self.model(sb["image"], sb["text"], memory * sb["mask"].unsqueeze(1))
                    ratio = torch.exp(dist.log_prob(sb["action"]) - sb["log_prob"])
                    surr1 = ratio * sb["advantage"]
                    surr2 = torch.clamp(ratio, 1 - a.clip, 1 + a.clip) * sb["advantage"]
                    policy_loss = -torch.min(surr1, surr2).mean()
                    clipped = sb["value"] + torch.clamp(value - sb["value"], -a.clip, a.clip)
                    value_loss = torch.max((value - sb["returnn"]).pow(2), (clipped - sb["returnn"]).pow(2)).mean()
                    loss = loss + policy_loss - a.entropy_coef * dist.entropy().mean() + a.value_coef * value_loss
                    if i < a.recurrence - 1:
                        exps["memory"][inds + i + 1] = memory.detach()
                loss = loss / a.recurrence
                self.opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), a.max_grad_norm)
                self.opt.step()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="small", choices=["small", "bow_endpool_res"])
    p.add_argument("--updates", type=int, default=3, help="timed updates (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up updates (default 1)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--frames-per-env", type=int, default=40)
    p.add_argument("--recurrence", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=1280)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    a.lr, a.gamma, a.lam, a.clip = 1e-4, 0.99, 0.99, 0.2
    a.entropy_coef, a.value_coef, a.max_grad_norm, a.reward_scale = 0.01, 0.5, 0.5, 20.0
    total = a.num_envs * a.frames_per_env
    if a.updates < 1 or a.warmup < 0 or a.threads < 1:
        p.error("--updates and --threads must be >= 1 and --warmup >= 0")
    if total % a.recurrence or a.batch_size % a.recurrence or total % a.batch_size:
        p.error(f"recurrence {a.recurrence} must divide batch {a.batch_size}, which must divide "
                f"the rollout {a.num_envs} x {a.frames_per_env} = {total}")
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)
    model = (SmallModel if a.model == "small" else BowEndpoolRes)(vocab=len(WORDS) + 2)
    algo = PPO(model, FreeEnvs(a.num_envs, a.seed), a)
    for _ in range(a.warmup):
        algo.update(algo.collect())
    collect_s = 0.0
    t0 = time.perf_counter()
    for _ in range(a.updates):
        c0 = time.perf_counter()
        exps = algo.collect()
        collect_s += time.perf_counter() - c0
        algo.update(exps)
    seconds = time.perf_counter() - t0
    print(f"model: {a.model}")
    print(f"torch: {torch.__version__} ({torch.get_num_threads()} threads, "
          f"BLAS {torch.__config__.show().split('BLAS_INFO=')[1].split(',')[0]})")
    print(f"parameters: {sum(q.numel() for q in model.parameters())}")
    print(f"num_envs: {a.num_envs}")
    print(f"updates: {a.updates}")
    print(f"frames: {a.updates * total}")
    print(f"seconds: {seconds:.3f}")
    print(f"rollout_share: {collect_s / seconds:.3f}")
    print(f"frames_per_sec: {a.updates * total / seconds:.1f}")


if __name__ == "__main__":
    main()
