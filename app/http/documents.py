"""Query documents, parsed, limited and validated once per distinct query text.

Everything here happens before execution and depends only on the query text and the settings, so
the outcome (a document or the errors that refuse it) is cached by text: a client repeating an
operation pays for none of it again. Limits run before schema validation because validation's
cost grows with the document, and the limits exist to bound that cost.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    specified_rules,
)
from graphql.error import GraphQLSyntaxError
from graphql.validation import ASTValidationRule
from strawberry.schema.schema import validate_document

from app.config import GraphQLLimits
from app.http.errors import ErrorCode
from app.http.text_input import literals_error

_SUGGESTION = re.compile(r"\s*Did you mean .*\?$")


def _coded(error: GraphQLError, code: ErrorCode, message: str | None = None) -> GraphQLError:
    return GraphQLError(
        message if message is not None else error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        extensions={**(error.extensions or {}), "code": code.value},
    )


def too_complex(message: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(message, nodes=nodes, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX})


@dataclass(frozen=True, slots=True)
class Shape:
    """What a selection set costs: its deepest path of fields, the aliases anywhere in it, the
    fields at its own level (fragments expanded), which for an operation are its root fields, and
    its fields at every level (fragments expanded), which is what validation's work grows with."""

    depth: int
    aliases: int
    fields: int
    selections: int = 0


_EMPTY = Shape(0, 0, 0, 0)


class _Measure:
    """Measures operations with each fragment measured once.

    Fragments are memoised, so a document that spreads fragments into each other many times costs
    linear, not exponential, time to measure. A fragment cycle (refused later by validation)
    counts as empty here.
    """

    def __init__(self, document: DocumentNode) -> None:
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._done: dict[str, Shape] = {}
        self._active: set[str] = set()

    def selection_set(self, node: SelectionSetNode) -> Shape:
        depth = aliases = fields = selections = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                inner = (
                    self.selection_set(selection.selection_set)
                    if selection.selection_set
                    else _EMPTY
                )
                # Introspection is answered from memory, and its standard query (which tools
                # such as GraphiQL send) nests `ofType` deeper than any sane limit on data.
                introspection = selection.name.value.startswith("__")
                depth = max(depth, 1 + (0 if introspection else inner.depth))
                aliases += inner.aliases + (1 if selection.alias else 0)
                fields += 1
                selections += 1 + inner.selections
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            else:  # pragma: no cover - the grammar has no other selections
                continue
            depth = max(depth, inner.depth)
            aliases += inner.aliases
            fields += inner.fields
            selections += inner.selections
        return Shape(depth, aliases, fields, selections)

    def fragment(self, name: str) -> Shape:
        done = self._done.get(name)
        if done is not None:
            return done
        definition = self._fragments.get(name)
        if definition is None or name in self._active:
            return _EMPTY
        self._active.add(name)
        shape = self.selection_set(definition.selection_set)
        self._active.discard(name)
        self._done[name] = shape
        return shape


def measure(document: DocumentNode) -> dict[OperationDefinitionNode, Shape]:
    """Each operation's shape."""
    measure = _Measure(document)
    return {
        d: measure.selection_set(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    }


def document_selections(document: DocumentNode) -> int:
    """The fields validation walks: every operation's and every fragment definition's (used or
    not: each is validated on its own), with the fragments they spread expanded."""
    measure = _Measure(document)
    total = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            total += measure.selection_set(definition.selection_set).selections
        elif isinstance(definition, FragmentDefinitionNode):
            total += measure.fragment(definition.name.value).selections
    return total


class _Overlaps:
    """Counts the fields that share a place: the same response names from the root, fragments
    expanded. Call only on a document within the selection limit: the walk expands fragments."""

    def __init__(self, document: DocumentNode) -> None:
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._active: set[str] = set()
        self.counts: dict[tuple[int, tuple[str, ...]], int] = {}

    def walk(self, root: int, node: SelectionSetNode, path: tuple[str, ...]) -> None:
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                place = (*path, (selection.alias or selection.name).value)
                key = (root, place)
                self.counts[key] = self.counts.get(key, 0) + 1
                if selection.selection_set:
                    self.walk(root, selection.selection_set, place)
            elif isinstance(selection, InlineFragmentNode):
                self.walk(root, selection.selection_set, path)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                definition = self._fragments.get(name)
                if definition is not None and name not in self._active:
                    self._active.add(name)
                    self.walk(root, definition.selection_set, path)
                    self._active.discard(name)


def overlapping_pairs(document: DocumentNode) -> int:
    """The pairs of fields validation must compare to know they can be merged.

    OverlappingFieldsCanBeMerged compares every two fields with one response name in a selection
    set (fragments expanded), and for each such pair their sub-selections, cross-wise: so exactly
    the fields at one place (the same response names from the root) are compared pairwise. A
    document repeating one field a few hundred times stays short but costs that rule seconds;
    counting those pairs first is linear, and bounds the rule's work.
    """
    overlaps = _Overlaps(document)
    for root, definition in enumerate(document.definitions):
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            overlaps.walk(root, definition.selection_set, ())
    return sum(n * (n - 1) // 2 for n in overlaps.counts.values())


def _limit_errors(document: DocumentNode, limits: GraphQLLimits) -> list[GraphQLError]:
    # These two come first and alone: they bound the work of everything after them.
    selections = document_selections(document)
    if selections > limits.max_selections:
        return [
            too_complex(
                f"The document selects {selections} fields, fragments expanded; the limit "
                f"(MAX_QUERY_SELECTIONS) is {limits.max_selections}"
            )
        ]
    pairs = overlapping_pairs(document)
    if pairs > limits.max_overlapping_pairs:
        return [
            too_complex(
                f"The document repeats fields at the same place {pairs} times over (pairs of "
                "same-named fields to merge, fragments expanded); the limit "
                f"(MAX_QUERY_OVERLAPS) is {limits.max_overlapping_pairs}"
            )
        ]
    errors: list[GraphQLError] = []
    for operation, shape in measure(document).items():
        name = f"Operation {operation.name.value!r}" if operation.name else "The operation"
        if shape.depth > limits.max_depth:
            errors.append(
                too_complex(
                    f"{name} nests fields {shape.depth} deep; the limit "
                    f"(MAX_QUERY_DEPTH) is {limits.max_depth}",
                    operation,
                )
            )
        if shape.aliases > limits.max_aliases:
            errors.append(
                too_complex(
                    f"{name} uses {shape.aliases} aliases; the limit "
                    f"(MAX_QUERY_ALIASES) is {limits.max_aliases}",
                    operation,
                )
            )
        if shape.fields > limits.max_root_fields:
            errors.append(
                too_complex(
                    f"{name} selects {shape.fields} root fields; the limit "
                    f"(MAX_ROOT_FIELDS) is {limits.max_root_fields}",
                    operation,
                )
            )
    return errors


_FRAGMENTS = "fragments"
_OPERATION = "operation"
_MAX_DERIVED = 64
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A query text's fate before execution: its document (if it parsed) and any refusal.

    The preparer caches it by text, so what is derived from the document alone (its fragments,
    the operation a name picks) is worked out once here and shared by every request sending
    that text.
    """

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    _derived: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def fragments(self) -> dict[str, FragmentDefinitionNode]:
        document = self.document
        assert document is not None
        return self.derive(
            _FRAGMENTS,
            lambda: {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            },
        )

    def derive(self, key: Hashable, make: Callable[[], _T]) -> _T:
        """What `make` derives from this document (and whatever `key` holds), kept under `key`:
        made once, for every request with this text. Beyond `_MAX_DERIVED` keys (say, many
        distinct variable values in keys) it is made afresh each time instead."""
        derived = self._derived
        if key in derived:
            value: _T = derived[key]
            return value
        value = make()
        if len(derived) < _MAX_DERIVED:
            derived[key] = value
        return value

    def operation(self, name: str | None) -> OperationDefinitionNode | GraphQLError:
        """The operation to run, chosen as the GraphQL spec's GetOperation does."""
        key = (_OPERATION, name)
        chosen: OperationDefinitionNode | GraphQLError | None = self._derived.get(key)
        if chosen is None:
            chosen = self._operation(name)
            if not isinstance(chosen, GraphQLError):
                # Only names the document holds: a client's other names would grow this.
                self._derived[key] = chosen
        return chosen

    def _operation(self, name: str | None) -> OperationDefinitionNode | GraphQLError:
        assert self.document is not None
        operations = [
            d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        if name is None:
            if len(operations) == 1:
                return operations[0]
            if not operations:
                return GraphQLError(
                    "The document has no operation to run",
                    extensions={"code": ErrorCode.BAD_USER_INPUT},
                )
            return GraphQLError(
                "The document has several operations: say which with `operationName`",
                extensions={"code": ErrorCode.BAD_USER_INPUT},
            )
        for operation in operations:
            if operation.name is not None and operation.name.value == name:
                return operation
        return GraphQLError(
            f"The document has no operation named {name[:100]!r}",
            extensions={"code": ErrorCode.BAD_USER_INPUT},
        )


class DocumentPreparer:
    """Parses, limits and validates query texts for one schema and one set of limits."""

    def __init__(self, schema: GraphQLSchema, limits: GraphQLLimits) -> None:
        self._schema = schema
        self._limits = limits
        rules: list[type[ASTValidationRule]] = list(specified_rules)
        if not limits.introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self.rules: tuple[type[ASTValidationRule], ...] = tuple(rules)
        self._cache: OrderedDict[str, Prepared] = OrderedDict()
        self._executor: ThreadPoolExecutor | None = None

    def prepare(self, query: str) -> Prepared:
        """On the caller's thread: for tools and tests; the server uses `prepare_off_loop`."""
        cached = self._cached(query)
        if cached is not None:
            return cached
        return self._keep(query, self._prepare(query))

    async def prepare_off_loop(self, query: str) -> Prepared:
        """A cached outcome at once; a new text is parsed and validated on this preparer's own
        thread, so the event loop keeps answering (health checks, other requests) meanwhile.

        One thread: documents arriving together are validated one after another, so validation
        can never hold more than that thread's share of the CPU, whoever sends them.
        """
        cached = self._cached(query)
        if cached is not None:
            return cached
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="graphql-validation")
        loop = asyncio.get_running_loop()
        return self._keep(query, await loop.run_in_executor(self._executor, self._prepare, query))

    def _cached(self, query: str) -> Prepared | None:
        cached = self._cache.get(query)
        if cached is not None:
            self._cache.move_to_end(query)
        return cached

    def _keep(self, query: str, prepared: Prepared) -> Prepared:
        if self._limits.document_cache_size:
            self._cache[query] = prepared
            if len(self._cache) > self._limits.document_cache_size:
                self._cache.popitem(last=False)
        return prepared

    def _prepare(self, query: str) -> Prepared:
        limits = self._limits
        if len(query) > limits.max_query_length:
            return Prepared(
                None,
                (
                    too_complex(
                        f"The query is {len(query)} characters long; the limit "
                        f"(MAX_QUERY_LENGTH) is {limits.max_query_length}"
                    ),
                ),
            )
        try:
            document = parse(query, max_tokens=limits.max_tokens)
        except GraphQLSyntaxError as error:
            if error.message == (
                f"Syntax Error: Document contains more than {limits.max_tokens} tokens. "
                "Parsing aborted."
            ):
                return Prepared(
                    None,
                    (
                        too_complex(
                            f"The query has more than {limits.max_tokens} tokens; the limit "
                            "(MAX_QUERY_TOKENS) is "
                            f"{limits.max_tokens}"
                        ),
                    ),
                )
            if error.message.startswith("Syntax Error: Document is nested too deeply"):
                return Prepared(None, (too_complex("The query is nested too deeply to parse"),))
            return Prepared(None, (_coded(error, ErrorCode.GRAPHQL_PARSE_FAILED),))
        except RecursionError:
            return Prepared(None, (too_complex("The query is nested too deeply to parse"),))

        try:
            limit_errors = _limit_errors(document, limits)
            if limit_errors:
                return Prepared(document, tuple(limit_errors))
            unstorable = literals_error(document)
            if unstorable is not None:
                return Prepared(document, (unstorable,))
            errors = validate_document(self._schema, document, self.rules)
        except RecursionError:
            return Prepared(document, (too_complex("The query is nested too deeply to check"),))
        return Prepared(
            document,
            tuple(
                _coded(
                    error,
                    ErrorCode.GRAPHQL_VALIDATION_FAILED,
                    # Suggestions would reveal field names that introspection hides.
                    None if limits.introspection else _SUGGESTION.sub("", error.message),
                )
                for error in errors
            ),
        )
