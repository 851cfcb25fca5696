"""Status chips are readable: every badge's text against its background is at least 4.5:1 (WCAG AA for small
text), read from the stylesheet the pages use."""

import re
from pathlib import Path

CSS = (Path(__file__).resolve().parents[2] / "observatory" / "static" / "observatory" / "app.css").read_text()


def _variables() -> dict[str, str]:
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS))


def _color(value: str, variables: dict[str, str]) -> str:
    value = value.strip()
    found = re.fullmatch(r"var\(--([a-z-]+)\)", value)
    return variables[found.group(1)] if found else value


def _luminance(hex_color: str) -> float:
    channels = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_badge_is_at_least_4_5_to_1():
    variables = _variables()
    rules = re.findall(r"(\.badge[^{]*)\{([^}]*)\}", CSS)
    base_background = base_color = None
    checked = {}
    for selector, body in rules:
        background = re.search(r"background:\s*([^;]+);", body)
        color = re.search(r"(?<![-a-z])color:\s*([^;]+);", body)
        if selector.strip() == ".badge":
            base_background, base_color = background.group(1), color.group(1)
        background = _color(background.group(1) if background else base_background, variables)
        color = _color(color.group(1) if color else base_color, variables)
        checked[selector.strip()] = round(contrast(color, background), 2)
    assert len(checked) >= 8
    assert {selector: ratio for selector, ratio in checked.items() if ratio < 4.5} == {}
