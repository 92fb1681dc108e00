"""Sentiment of generated movie reviews, the course exercise in plain PyTorch: an embedding, a
bidirectional LSTM over each review's own length (a PackedSequence), a linear read-out of the
two directions' final states, BCEWithLogitsLoss, Adam and a DataLoader.

    python python/examples/sentiment.py --rnn wgrnn   # the LSTM is wgrnn.torch.LSTM
    python python/examples/sentiment.py --rnn torch   # the LSTM is torch.nn.LSTM

`--rnn` swaps the layer and nothing else: both take the same arguments and, from the same torch
seed, draw the same initial weights, so the two runs start from the same model.

The labels depend on word order, as in the Rust example (examples/sentiment): a negation flips
the adjective after it ("not good", "never boring"), and in a contrast the main clause decides,
the one after "but" ("good but boring" is negative) or before "though" ("great though slow" is
positive). Each contrast's mirror (its clauses swapped) is as likely and carries the other label,
so no bag of words can expect more than 1 - 0.65/2 = 67.5 % held out. One text in ten is held out
(by a hash of its words) and never trained on. Prints the held-out accuracy after every epoch.
"""

import argparse
import hashlib
import random
import time

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from torch.utils.data import DataLoader

SUBJECTS = ["the plot", "the acting", "the ending", "the music", "the story", "the dialogue",
            "the cast", "the script", "the film", "it"]
VERBS = ["was", "is"]
NEGATIONS = ["not", "never"]
INTENSIFIERS = ["very", "really", "quite", "so", "truly"]
POSITIVE = ["good", "great", "brilliant", "fun", "moving", "clever", "wonderful", "beautiful",
            "gripping", "superb"]
NEGATIVE = ["bad", "boring", "dull", "awful", "weak", "terrible", "slow", "bland",
            "predictable", "lifeless"]
OPENERS = ["honestly", "overall", "frankly"]
CONTRAST_SHARE, THOUGH_SHARE, AND_SHARE = 0.65, 0.4, 0.10
PAD, UNKNOWN = 0, 1


def clause(rng, positive):
    """[subject verb] [negation] [intensifier] adjective ["at all"], of the given polarity."""
    negated = rng.random() < 0.4
    words = []
    if rng.random() < 0.7:
        words += rng.choice(SUBJECTS).split() + [rng.choice(VERBS)]
    if negated:
        words.append(rng.choice(NEGATIONS))
    intensified = rng.random() < 0.3
    if intensified:
        words.append(rng.choice(INTENSIFIERS))
    words.append(rng.choice(POSITIVE if positive != negated else NEGATIVE))
    if negated and not intensified and rng.random() < 0.4:
        words += ["at", "all"]
    return words


def review(rng, positive):
    u = rng.random()
    if u < CONTRAST_SHARE:
        if rng.random() < THOUGH_SHARE:
            return clause(rng, positive) + ["though"] + clause(rng, not positive)
        return clause(rng, not positive) + ["but"] + clause(rng, positive)
    if u < CONTRAST_SHARE + AND_SHARE:
        return clause(rng, positive) + ["and"] + clause(rng, positive)
    return clause(rng, positive)


def held_out(text):
    return hashlib.sha256(text.encode()).digest()[0] % 10 == 0


def generate(n, seed):
    """`n` (text, label) pairs with balanced labels, split into (train, held out) by text."""
    rng = random.Random(seed)
    train, held = [], []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = ([rng.choice(OPENERS)] if rng.random() < 0.1 else []) + review(rng, positive)
        text = " ".join(words)
        (held if held_out(text) else train).append((text, float(positive)))
    return train, held


VOCAB = {w: i + 2 for i, w in enumerate(dict.fromkeys(
    [w for s in SUBJECTS for w in s.split()] + VERBS + NEGATIONS + INTENSIFIERS + POSITIVE
    + NEGATIVE + OPENERS + ["at", "all", "and", "but", "though"]))}


def collate(batch):
    """Pads a batch of (text, label) to [B, T] word ids; lengths stay on the CPU."""
    ids = [torch.tensor([VOCAB.get(w, UNKNOWN) for w in text.split()]) for text, _ in batch]
    lengths = torch.tensor([len(t) for t in ids])
    labels = torch.tensor([label for _, label in batch])
    return pad_sequence(ids, batch_first=True, padding_value=PAD), lengths, labels


class Classifier(nn.Module):
    def __init__(self, lstm_class, vocab, embed, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=PAD)
        self.lstm = lstm_class(embed, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, 1)

    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embed(ids), lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)
        # h_n [2, B, H]: the forward direction's last step and the reverse one's first.
        return self.out(torch.cat([h_n[0], h_n[1]], dim=-1)).squeeze(-1)


def accuracy(model, loader):
    model.eval()
    right = total = 0
    with torch.no_grad():
        for ids, lengths, labels in loader:
            right += ((model(ids, lengths) > 0).float() == labels).sum().item()
            total += len(labels)
    model.train()
    return right / max(total, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rnn", choices=["wgrnn", "torch"], default="wgrnn")
    p.add_argument("--examples", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    if args.rnn == "wgrnn":
        import wgrnn
        import wgrnn.torch
        lstm_class = wgrnn.torch.LSTM
        print(f"rnn: wgrnn.torch.LSTM on {wgrnn.Context().adapter_name}")
    else:
        lstm_class = nn.LSTM
        print(f"rnn: torch.nn.LSTM on torch's CPU ({torch.get_num_threads()} threads)")

    train, held = generate(args.examples, args.seed)
    print(f"{len(train)} training reviews, {len(held)} held out, e.g. {held[0][0]!r} -> "
          f"{'positive' if held[0][1] else 'negative'}")
    torch.manual_seed(args.seed)
    model = Classifier(lstm_class, len(VOCAB) + 2, args.embed, args.hidden)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(args.seed))
    held_loader = DataLoader(held, batch_size=256, collate_fn=collate)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.BCEWithLogitsLoss()
    print(f"epoch 0: held-out accuracy {accuracy(model, held_loader):.2%}")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for ids, lengths, labels in loader:
            loss = loss_fn(model(ids, lengths), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(labels)
        print(f"epoch {epoch}: train loss {total / len(train):.4f}, held-out accuracy "
              f"{accuracy(model, held_loader):.2%}, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
