"""Training (placeholder until the training issue lands)."""


def add_arguments(parser):
    parser.set_defaults(func=lambda args: (_ for _ in ()).throw(SystemExit("training is not implemented yet")))
