"""What the web view's URLs say: the images page's filter box, toggles, sort and page
anchors, and a report's options, read from the query string. Everything a page shows
is in its URL, so a view can be bookmarked and linked.

The filter box (docs/web.md §2.2, §2.4) takes what `catalog images` takes, in one line:
`-f` filters as `KEY=VALUE` terms separated by spaces (quoted as a shell would when a
value has spaces), and a bare term as the REPOSITORY[:TAG] argument (a `reference`
filter).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from catalog.docker.filters import FilterArgs, parse_filter_flags
from catalog.errors import InvalidArgument, InvalidFilter
from catalog.services.imagepages import DEFAULT_DESCENDING, MAX_PAGE_SIZE, PAGE_SORTS, PageSort
from catalog.services.reports import OPTION_NAMES, PERIODS, Report, ReportOptions

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
_TRUE = ("1", "true", "on", "yes")


def parse_filter_box(text: str) -> FilterArgs:
    """The filter box's terms as the CLI's `-f` flags plus its REPOSITORY argument."""
    try:
        terms = shlex.split(text)
    except ValueError as exc:
        raise InvalidFilter(f"cannot read the filter box: {exc}") from None
    flags = [term for term in terms if "=" in term]
    args = parse_filter_flags(flags)
    for term in terms:
        if "=" not in term:
            args.add("reference", term)
    return args


@dataclass(frozen=True)
class ImagesQuery:
    """The images page's state: filter text, `-a`, sort and direction, page anchor."""

    filter: str = ""
    all_images: bool = False
    sort: PageSort = "created"
    descending: bool = True
    after: str | None = None
    before: str | None = None
    limit: int = DEFAULT_PAGE_SIZE

    @classmethod
    def from_params(cls, params: QueryParams) -> ImagesQuery:
        sort = params.get("sort") or "created"
        if sort not in PAGE_SORTS:
            raise InvalidArgument(f"invalid sort: {sort!r} (one of {', '.join(PAGE_SORTS)})")
        order = params.get("order") or ("desc" if DEFAULT_DESCENDING[sort] else "asc")
        if order not in ("asc", "desc"):
            raise InvalidArgument(f"invalid order: {order!r} (asc or desc)")
        limit = _whole_number(params, "limit", DEFAULT_PAGE_SIZE)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidArgument(f"invalid limit: {limit} (1 to {MAX_PAGE_SIZE})")
        return cls(
            filter=params.get("filter", "").strip(),
            all_images=params.get("all", "").lower() in _TRUE,
            sort=sort,
            descending=order == "desc",
            after=params.get("after") or None,
            before=params.get("before") or None,
            limit=limit,
        )

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"

    @property
    def default_order(self) -> bool:
        return self.descending == DEFAULT_DESCENDING[self.sort]

    def filters(self) -> FilterArgs:
        return parse_filter_box(self.filter)

    def url(self, **changes: Any) -> str:
        """The images page's URL for this state with `changes`; the page anchors go
        unless given (a new filter or sort starts at the first page)."""
        changes.setdefault("after", None)
        changes.setdefault("before", None)
        state = replace(self, **changes)
        params: dict[str, str] = {}
        if state.filter:
            params["filter"] = state.filter
        if state.all_images:
            params["all"] = "1"
        if state.sort != "created":
            params["sort"] = state.sort
        if not state.default_order:
            params["order"] = state.order
        if state.limit != DEFAULT_PAGE_SIZE:
            params["limit"] = str(state.limit)
        if state.after:
            params["after"] = state.after
        if state.before:
            params["before"] = state.before
        return "/?" + urlencode(params) if params else "/"

    def sort_url(self, sort: PageSort) -> str:
        """A column header's link: sort by it, or reverse it when it is the sort."""
        if sort == self.sort:
            return self.url(descending=not self.descending)
        return self.url(sort=sort, descending=DEFAULT_DESCENDING[sort])


def _whole_number(params: QueryParams, name: str, default: int) -> int:
    value = params.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid {name}: {value!r} (a whole number)") from None


@dataclass(frozen=True)
class ReportForm:
    """A report's options as its form sends them; blank fields mean the defaults."""

    values: dict[str, str]

    @classmethod
    def from_params(cls, report: Report, params: QueryParams) -> ReportForm:
        unknown = sorted(set(params) - set(OPTION_NAMES))
        if unknown:
            raise InvalidArgument(f"unknown report option: {unknown[0]}")
        values = {}
        for name in OPTION_NAMES:
            value = params.get(name, "").strip()
            if value:
                if name not in report.options:
                    raise InvalidArgument(f"report {report.name} takes no {name} option")
                values[name] = value
        return cls(values)

    def options(self) -> ReportOptions:
        numbers = {}
        for name in ("max_tags", "limit"):
            text = self.values.get(name)
            if text is None:
                continue
            try:
                numbers[name] = int(text)
            except ValueError:
                raise InvalidArgument(f"invalid {name} value: {text!r} (a whole number)") from None
        period = self.values.get("period")
        if period is not None and period not in PERIODS:
            raise InvalidArgument(f"invalid period value: {period!r} (week or month)")
        return ReportOptions(
            older_than=self.values.get("older_than"),
            max_tags=numbers.get("max_tags"),
            period=period,
            limit=numbers.get("limit"),
        )

    def query(self) -> str:
        """The options as a query string (`?...`, or empty)."""
        return "?" + urlencode(self.values) if self.values else ""
