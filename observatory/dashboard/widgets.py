"""Form widgets rendered in Python instead of through Django's widget templates.

The settings page holds a small form on every team, product and member row; with fifty teams each product row's
team menu has fifty options, and Django renders every option through a template of its own (seconds for a page of
a hundred products). These give the same markup: the attributes Django would give (id, name, required, maxlength,
the chosen option), escaped.
"""

from __future__ import annotations

from functools import lru_cache

from django import forms
from django.forms.utils import flatatt
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe


class QuickTextInput(forms.TextInput):
    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        attributes = {"type": widget["type"], "name": widget["name"], **widget["attrs"]}
        if widget["value"] is not None:
            attributes["value"] = widget["value"]
        return format_html("<input{}>", flatatt(attributes))


@lru_cache(maxsize=256)
def _options(choices: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str, str], ...]:
    """Each choice's key, and its option markup split around where " selected" goes (escaped once per menu)."""
    return tuple((key, f'<option value="{conditional_escape(key)}"', f">{conditional_escape(label)}</option>")
                 for key, label in choices)


class QuickSelect(forms.Select):
    """A flat menu (no option groups, one choice)."""

    def render(self, name, value, attrs=None, renderer=None):
        chosen = set(self.format_value(value))
        options = "".join(f"{head} selected{tail}" if key in chosen else head + tail
                          for key, head, tail in _options(tuple((str(k), str(v)) for k, v in self.choices)))
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(self.build_attrs(self.attrs, attrs)),
                           mark_safe(options))  # noqa: S308 (each option escaped in _options)
