"""`eegattn demo`: the main job on the embedded default data."""

HELP = "run the main job on the embedded synthetic release (what `make demo` runs)"


def add_arguments(parser):
    parser.add_argument("--epochs", type=int, default=None, help="training epochs")
    parser.add_argument("--cache-dir", default=None, help="synthetic release and cache folder")
    parser.add_argument("--runs-dir", default="runs", help="where the run folder is written")


def run(args):
    import torch

    from eegattn.attention import available_attention, build_attention

    x = torch.randn(2, 50, 64)
    for name in available_attention():
        module = build_attention(name, dim=64, heads=4).eval()
        with torch.no_grad():
            y = module(x)
        print(f"{name:15s} {tuple(x.shape)} -> {tuple(y.shape)}")
    return 0
