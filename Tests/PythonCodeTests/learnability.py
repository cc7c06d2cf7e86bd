"""Do the pieces fit? Train a dense d_model 64, 2-layer model on the synthetic corpus with the
PyTorch reference trainer, then report its held-out loss and the task loss (SPEC 1: softmax over
the two candidate logits, cross-entropy of the correct one) of each task on its test pairs.

    python3 Tests/PythonCodeTests/learnability.py --circuitry .build/release/circuitry \
        --reference ../shared/reference --steps 2000 --out /tmp/learnability
"""
import argparse, json, os, subprocess, sys

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument('--circuitry', required=True, help='path to the circuitry executable')
ap.add_argument('--reference', required=True, help='directory holding sparse_gpt.py')
ap.add_argument('--out', required=True, help='work directory')
ap.add_argument('--steps', type=int, default=2000)
ap.add_argument('--seed', type=int, default=0)
ap.add_argument('--skip-train', action='store_true', help='evaluate the model already in --out')
a = ap.parse_args()
sys.path.insert(0, a.reference)
import numpy as np, torch
from sparse_gpt import GPT, Config, load_safetensors

os.makedirs(a.out, exist_ok=True)
tok, train, val, pairs, model = (os.path.join(a.out, f) for f in ('tok.json', 'train.bin', 'val.bin', 'pairs.json', 'm.safetensors'))
run = lambda *cmd: subprocess.run([str(c) for c in cmd], check=True)
if not a.skip_train:
    run(a.circuitry, 'tokenizer', 'train', '--seed', a.seed, '--bytes', 10_000_000, '--out', tok)
    run(a.circuitry, 'corpus', 'tokens', '--seed', a.seed, '--tokenizer', tok, '--train-tokens', 4_000_000,
        '--held-out-tokens', 200_000, '--out-train', train, '--out-held-out', val)
    run(sys.executable, os.path.join(a.reference, 'sparse_gpt.py'), 'train', '--tokens', train, '--val', val,
        '--steps', a.steps, '--density', 1, '--afrac', 1, '--d-model', 64, '--n-layer', 2, '--context', 64,
        '--batch', 32, '--vocab', 512, '--seed', a.seed, '--log-every', 250, '--out', model)
run(a.circuitry, 'tasks', 'export', '--tokenizer', tok, '--seed', a.seed, '--train-pairs', 8, '--test-pairs', 512, '--out', pairs)

tensors, meta = load_safetensors(model)
m = GPT(Config(**json.loads(meta['config'])))
m.load_state_dict(tensors)
torch.set_num_threads(2)
report = {}
with torch.no_grad():
    v = np.fromfile(val, dtype='<u2').astype(np.int64)
    T = m.c.context
    windows = torch.from_numpy(np.stack([v[s:s + T + 1] for s in np.linspace(0, len(v) - T - 1, 256).astype(np.int64)]))
    report['heldout_loss'] = round(sum(m(b[:, :-1], b[:, 1:])[1].item() * len(b) for b in windows.split(64)) / len(windows), 4)
    for name, splits in json.load(open(pairs)).items():
        d = splits['test']
        P, L = torch.tensor(d['prompts']), torch.tensor(d['lengths'])
        C = torch.tensor(d['candidates']).view(-1, 2)
        two = m(P)[0][torch.arange(len(P)), L - 1].gather(1, C)
        loss = torch.logsumexp(two, 1) - two[:, 0]
        report[name] = dict(loss=round(loss.mean().item(), 4), accuracy=round((two[:, 0] > two[:, 1]).float().mean().item(), 3))
print(json.dumps(report, indent=1))
