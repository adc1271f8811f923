"""`talnet synth`: write the synthetic THUMOS'14-like benchmark (annotations + features)."""

from __future__ import annotations

import argparse

from talnet.errors import TalnetError

PROFILES = ("demo", "thumos14", "activitynet")
DESCRIPTIONS = {
    "demo": "videos of 1.5-4 min with 3-15 instances, context pairs, distractors, weak RGB",
    "thumos14": "demo's renderer, videos and actions laid out like THUMOS'14's test set",
    "activitynet": "laid out like ActivityNet v1.3: 200 classes, 1-2 long instances per video",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic THUMOS'14-like dataset (annotations + rgb/flow features)",
        description="Write DIR/annotations.json (ActivityNet-style; subset 'validation' for "
        "training, 'test' for testing), DIR/features/VIDEO_ID.npy of shape (T, 2*DIM) = "
        "[rgb | flow] on the 30 fps / stride 4 / window 16 grid, and DIR/features/meta.json. "
        "Actions last from under 1 s to over a minute, with class-specific context before and "
        "after, distractors in the background and a weak RGB stream. Same seed, same bytes.",
    )
    from talnet.data.anet_generators import ANET_GENERATORS
    from talnet.data.generators import GENERATORS

    parser.add_argument("--out", metavar="DIR", help="output folder (required unless listing)")
    parser.add_argument(
        "--list-profiles",
        action="store_true",
        help="print every profile's name and a one-line description, and exit",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES + tuple(GENERATORS) + tuple(ANET_GENERATORS),
        default="demo",
        help="demo (default): videos of 1.5-4 min with 3-15 instances each; thumos14: videos "
        "and actions shaped like THUMOS'14's test set (long, dense videos of short actions, "
        "its 20 class names and skewed class counts, CliffDiving also labelled Diving); "
        "activitynet: shaped like ActivityNet v1.3 (200 classes unless --classes; videos of "
        "about 2 min, 1-2 long instances covering about half of each, some the whole video; "
        "subsets training / validation; 16-frame steps, to resample with talnet "
        "resample-features); " + ", ".join(GENERATORS) + ": thumos14's layout and ground "
        "truth (tempo: its action lengths redrawn) with actions rendered differently, to "
        "check that a method wins on every renderer (--list-profiles says how); "
        + ", ".join(ANET_GENERATORS)
        + ": the same for activitynet's layout and ground truth "
        "(any --classes, 200 by default). All but demo print the realized statistics beside "
        "the dataset's",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--videos-train", type=int, default=200, metavar="N", help="training videos (default 200)"
    )
    parser.add_argument(
        "--videos-test", type=int, default=213, metavar="N", help="test videos (default 213)"
    )
    parser.add_argument(
        "--classes",
        type=int,
        default=None,
        metavar="K",
        help="classes (default 20; the thumos14 profile and its generators have THUMOS'14's "
        "20, activitynet and anet-* default to 200)",
    )
    parser.add_argument(
        "--dim", type=int, default=64, metavar="D", help="feature size per stream (default 64)"
    )
    parser.add_argument(
        "--rgb-venue",
        type=float,
        default=0.0,
        metavar="A",
        help="venue shift (default 0 = off): in training videos each action's surroundings "
        "carry a class-specific RGB pattern of amplitude A that test videos do not share, an "
        "easy shortcut that fails at test time (try 1.0)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talnet.data.anet_generators import ANET_GENERATORS
    from talnet.data.generators import GENERATORS
    from talnet.data.synth import SynthConfig, make_synthetic

    if args.list_profiles:
        generators = GENERATORS | ANET_GENERATORS
        descriptions = DESCRIPTIONS | {n: p.description for n, p in generators.items()}
        width = max(map(len, descriptions)) + 2
        for name, line in descriptions.items():
            print(f"{name:<{width}}{line}")
        return 0
    if args.out is None:
        raise TalnetError("synth needs --out DIR (or --list-profiles)")
    config = SynthConfig(rgb_venue=args.rgb_venue)
    if args.profile in GENERATORS:
        from talnet.data.generators import generator_ground_truth, make_generated
        from talnet.data.profiles import describe_profile
        from talnet.data.thumos_profile import CLASSES

        if args.classes not in (None, len(CLASSES)):
            raise TalnetError(
                f"--profile {args.profile} has THUMOS'14's {len(CLASSES)} classes, "
                f"not {args.classes}"
            )
        if args.rgb_venue:
            raise TalnetError(f"--rgb-venue does not apply to --profile {args.profile}")
        sizes = (args.seed, args.videos_train, args.videos_test)
        out = make_generated(args.profile, args.out, *sizes, dim=args.dim, config=config)
        print(describe_profile(generator_ground_truth(args.profile, *sizes, config=config)))
    elif args.profile == "thumos14":
        from talnet.data.profiles import describe_profile
        from talnet.data.thumos_profile import CLASSES, make_thumos14, thumos14_ground_truth

        if args.classes not in (None, len(CLASSES)):
            raise TalnetError(
                f"--profile thumos14 has THUMOS'14's {len(CLASSES)} classes, not {args.classes}"
            )
        sizes = (args.seed, args.videos_train, args.videos_test)
        out = make_thumos14(args.out, *sizes, dim=args.dim, config=config)
        print(describe_profile(thumos14_ground_truth(*sizes, config=config)))
    elif args.profile == "activitynet" or args.profile in ANET_GENERATORS:
        from talnet.data.anet_generators import make_anet_generated
        from talnet.data.anet_profile import (
            ACTIVITYNET_CLASSES,
            activitynet_synthetic_ground_truth,
            describe_activitynet,
            make_activitynet,
        )

        classes = ACTIVITYNET_CLASSES if args.classes is None else args.classes
        sizes = (args.seed, args.videos_train, args.videos_test, classes)
        if args.profile == "activitynet":
            out = make_activitynet(args.out, *sizes, dim=args.dim, config=config)
        elif args.rgb_venue:
            raise TalnetError(f"--rgb-venue does not apply to --profile {args.profile}")
        else:
            out = make_anet_generated(args.profile, args.out, *sizes, args.dim, config)
        print(describe_activitynet(activitynet_synthetic_ground_truth(*sizes, config=config)))
    else:
        out = make_synthetic(
            args.out,
            seed=args.seed,
            videos_train=args.videos_train,
            videos_test=args.videos_test,
            classes=20 if args.classes is None else args.classes,
            dim=args.dim,
            config=config,
        )
    total = args.videos_train + args.videos_test
    print(f"wrote {total} videos: {out / 'annotations.json'} and {out / 'features'}")
    return 0
