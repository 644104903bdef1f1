"""grader.cpu_redirect: a notebook's CUDA placement runs on the CPU where there is no CUDA.

The redirect patches torch process-wide, so the cases run in a fresh Python
(with CUDA hidden: CUDA_VISIBLE_DEVICES=""), each with the redirect freshly
installed, and print what they saw as JSON. The
end-to-end test grades a CUDA-selecting variant of the solved notebook against
its CPU twin: the same score and the same measured loss, bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from grader.samples import make_sample

KIT = Path(__file__).resolve().parent.parent

# Each section runs with the redirect freshly installed and records into `seen`; `requested` is added.
SECTIONS = {
    "to": """
        for device in ('cuda', 'cuda:0', torch.device('cuda'), torch.device('cuda', 0), 0):
            x = torch.ones(3).to(device)
            y = torch.ones(3).to(device, torch.float64)
            z = torch.ones(3).to(device=device, non_blocking=True)
            net = torch.nn.Linear(2, 2).to(device)
            seen.setdefault('devices', []).append([str(t.device) for t in (x, y, z, net.weight)])
        seen['dtype'] = str(y.dtype)
    """,
    "cuda_methods": """
        x = torch.ones(3)
        net = torch.nn.Linear(2, 2)
        seen['same'] = [x.cuda() is x, x.cuda(0) is x, net.cuda() is net, net.cuda(device=0) is net]
        seen['device'] = str(net.weight.device)
    """,
    "factories": """
        made = [torch.zeros(2, device='cuda'), torch.tensor([1.0], device=torch.device('cuda')),
                torch.randn(2, device='cuda:0'), torch.arange(3, device=0),
                torch.zeros_like(torch.ones(2), device='cuda')]
        seen['devices'] = sorted({str(t.device) for t in made})
    """,
    "load": """
        buffer = io.BytesIO()
        torch.save({'w': torch.ones(2)}, buffer)
        for where in ('cuda', torch.device('cuda:0'), {'cpu': 'cuda'}, None, 'cpu'):
            buffer.seek(0)
            seen.setdefault('loaded', []).append(str(torch.load(buffer, map_location=where)['w'].device))
    """,
    "default_device": """
        torch.set_default_device('cuda')
        seen['default'] = str(torch.ones(1).device)
        torch.set_default_device(None)
    """,
    "cpu_is_not_recorded": """
        torch.manual_seed(0)
        a = torch.nn.Linear(4, 3).to('cpu')(torch.ones(1, 4).to(torch.device('cpu')))
        seen['plain'] = str(torch.zeros(1, device='cpu').device)
    """,
    "same_numbers": """
        torch.manual_seed(0)
        a = torch.nn.Linear(4, 3).to('cpu')(torch.ones(1, 4).to(torch.device('cpu')))
        torch.manual_seed(0)
        b = torch.nn.Linear(4, 3).to('cuda')(torch.ones(1, 4).cuda())
        seen['equal'] = torch.equal(a, b)
    """,
    "slayer": """
        def run(device):
            torch.manual_seed(0)
            net = Network().to(device)
            error = make_loss().to(device)
            optimizer = torch.optim.Adam(net.parameters(), lr=0.001)
            assistant = slayer.utils.Assistant(net, error, optimizer, slayer.utils.LearningStats())
            x = (torch.rand(1, 200, 60) < 0.05).float()
            y = (torch.rand(1, 200, 60) < 0.05).float()
            outputs = [assistant.train(x, y).sum().item() for _ in range(2)]
            return outputs, [p.detach().clone() for p in net.parameters()]

        cpu, cpu_params = run(torch.device('cpu'))
        cuda, cuda_params = run(torch.device('cuda'))
        seen['same_outputs'] = cpu == cuda
        seen['same_weights'] = all(torch.equal(a, b) for a, b in zip(cpu_params, cuda_params))
    """,
}
SCRIPT = """
import io, json, sys, tempfile, torch
import lava.lib.dl.slayer as slayer
import grader.probe as probe
from grader import cpu_redirect
from solution import Network, make_loss

out = {'cuda': torch.cuda.is_available()}
probe.preamble(seed=0, accelerate=False)  # installs the redirect: no CUDA here
out['preamble'] = {'installed': 'grader.cpu_redirect' in sys.modules,
                   'device': str(torch.nn.Linear(1, 1).to('cuda').weight.device)}
with tempfile.TemporaryDirectory() as tmp:
    probe.run({}, out_dir=tmp)
    out['probe'] = json.load(open(tmp + '/probe.json'))['cuda_on_cpu']
cpu_redirect.uninstall()
for name, body in json.loads(sys.argv[1]).items():
    cpu_redirect.install()
    seen = {}
    exec(body, globals())
    seen['requested'] = cpu_redirect.requested()
    cpu_redirect.uninstall()
    out[name] = seen
try:
    torch.ones(1).to('cuda')
    out['after_uninstall'] = 'no error'
except (RuntimeError, AssertionError) as exc:
    out['after_uninstall'] = type(exc).__name__
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def seen() -> dict:
    """Every section, run in one fresh interpreter without CUDA (CUDA_VISIBLE_DEVICES='')."""
    sections = json.dumps({name: textwrap.dedent(body) for name, body in SECTIONS.items()})
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(KIT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, sections], cwd=KIT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_preamble_installs_it_without_cuda_and_the_probe_records_it(seen: dict) -> None:
    assert seen["cuda"] is False
    assert seen["preamble"] == {"installed": True, "device": "cpu"}
    assert seen["probe"] == ["Module.to"]


def test_tensor_and_module_to_a_cuda_device_stay_on_the_cpu(seen: dict) -> None:
    # 'cuda', 'cuda:0', torch.device('cuda'), torch.device('cuda', 0), 0; positional, with a dtype, as device=
    assert seen["to"] == {"devices": [["cpu"] * 4] * 5, "dtype": "torch.float64",
                          "requested": ["Module.to", "Tensor.to"]}


def test_cuda_methods_return_the_cpu_object(seen: dict) -> None:
    assert seen["cuda_methods"] == {"same": [True] * 4, "device": "cpu", "requested": ["Module.cuda", "Tensor.cuda"]}


def test_factory_functions(seen: dict) -> None:
    assert seen["factories"] == {"devices": ["cpu"], "requested": [
        "torch.arange", "torch.randn", "torch.tensor", "torch.zeros", "torch.zeros_like"]}


def test_load_maps_cuda_to_the_cpu(seen: dict) -> None:
    assert seen["load"] == {"loaded": ["cpu"] * 5, "requested": ["torch.load"]}


def test_default_device(seen: dict) -> None:
    assert seen["default_device"] == {"default": "cpu", "requested": ["torch.set_default_device"]}


def test_cpu_placement_is_not_recorded(seen: dict) -> None:
    assert seen["cpu_is_not_recorded"] == {"plain": "cpu", "requested": []}


def test_the_same_numbers_as_on_the_cpu(seen: dict) -> None:
    assert seen["same_numbers"] == {"equal": True, "requested": ["Module.to", "Tensor.cuda"]}


def test_slayer_trains_on_a_cuda_device_as_on_the_cpu(seen: dict) -> None:
    """The handout's lines (net.to(device), error.to(device), the Assistant) with device = cuda."""
    assert seen["slayer"] == {"same_outputs": True, "same_weights": True, "requested": ["Module.to"]}


def test_uninstall_restores_torch(seen: dict) -> None:
    assert seen["after_uninstall"] == "RuntimeError"


# --- end to end: a notebook that selects CUDA scores as its CPU twin ---------------------------

CPU_LINES = "device = torch.device('cpu')\n# device = torch.device('cuda')"
CUDA_LINES = "# device = torch.device('cpu')\ndevice = torch.device('cuda')"
TWIN_EPOCHS = 3


def cuda_twin() -> nbformat.NotebookNode:
    """The solved notebook with the handout's commented CUDA line switched on instead of the CPU line."""
    nb = make_sample("reference")
    cell = next(c for c in nb.cells if c.cell_type == "code" and CPU_LINES in c.source)
    cell.source = cell.source.replace(CPU_LINES, CUDA_LINES)
    return nb


@pytest.mark.slow
def test_a_cuda_notebook_scores_as_its_cpu_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from grader.batch import grade_batch
    from grader.config import load_config
    from grader.report import collect
    from grader.cpu_redirect import NOTE as CUDA_ON_CPU

    subs = tmp_path / "subs"
    for name, nb in (("cpu", make_sample("reference")), ("cuda", cuda_twin())):
        (subs / name).mkdir(parents=True)
        nbformat.write(nb, subs / name / "train.ipynb")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # a grader with a GPU would run the twin on it
    summary = grade_batch([subs], tmp_path / "out", load_config(), TWIN_EPOCHS, workers=1, progress=False,
                          unsandboxed=True)
    assert summary.errors == {}
    results = {r.submission_id: r for r in collect(tmp_path / "out")}
    cpu, cuda = results["cpu"], results["cuda"]
    assert cuda.score == cpu.score == 100
    assert cuda.measurements["loss"] == cpu.measurements["loss"]  # the same bits
    assert cuda.measurements["weights_sha256"] == cpu.measurements["weights_sha256"]
    assert [(c.name, c.score) for c in cuda.checks] == [(c.name, c.score) for c in cpu.checks]
    assert cuda.check("execution").message.endswith(CUDA_ON_CPU)
    assert CUDA_ON_CPU not in cpu.check("execution").message
    assert CUDA_ON_CPU == ("; the notebook asks for a CUDA device and the grading machine has none, "
                           "so it ran on the CPU: no points lost")
