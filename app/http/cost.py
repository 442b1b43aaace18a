"""Query cost: what an operation may cost before it runs, and what it did cost after.

The model (after Shopify's and GitHub's public APIs, and the IBM cost directive's `@listSize`):
every object an operation returns costs 1, scalars and enums 0; a connection costs nothing itself
but multiplies its `edges` by `first` (the schema's default when absent, the variable's value when
given by a variable); any other list is assumed to hold `QUERY_COST_LIST_SIZE` values, except one
sliced by an `ids` argument (its length). Connection plumbing (`…Connection`, `…Edge`,
`PageInfo`) costs 0: a page is charged by its nodes. A mutation's root field costs 10 (a write);
`QUERY_COST_FIELD_WEIGHTS` sets any field's weight (`Type.field=N`).

Both numbers come from one tree built from the document: one node per response key (aliases are
separate keys, fragments merge into the keys they add, `@skip`/`@include` are applied), so the
requested cost counts what execution will run, and the actual cost walks the same tree over the
result (objects really returned), whichever executor produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
)
from graphql.type.definition import GraphQLOutputType

from app.config import CostSettings

MUTATION_WEIGHT = 10
_SLICE = "first"
_IDS = "ids"


@dataclass(slots=True)
class CostNode:
    """One response key: its weight per value, how many values it is expected to return, and
    the keys below it."""

    weight: int
    size: int
    children: dict[str, CostNode]

    def requested(self) -> int:
        return self.size * (self.weight + sum(c.requested() for c in self.children.values()))

    def measure(self, value: Any) -> int:
        """What this key's value in a result really cost."""
        counted = self.counted()
        return 0 if counted is None else _measure(counted, value)

    def counted(self) -> _Counted | None:
        """This key with only the keys below it that can cost anything (None if none can):
        a page's scalars are most of its keys and never cost, so `actual` never visits them."""
        children = tuple(
            (key, counted)
            for key, child in self.children.items()
            if (counted := child.counted()) is not None
        )
        if not self.weight and not children:
            return None
        return (self.weight, children)

    def merge(self, other: CostNode) -> None:
        self.weight = max(self.weight, other.weight)
        self.size = max(self.size, other.size)
        for key, child in other.children.items():
            mine = self.children.get(key)
            if mine is None:
                self.children[key] = child
            else:
                mine.merge(child)


@dataclass(frozen=True, slots=True)
class Cost:
    """An operation's cost tree (its root keys)."""

    roots: dict[str, CostNode]
    # Worked out once: the tree is complete when the Cost is made, and a kept Cost (the
    # pipeline keeps one per document) is asked on every request.
    requested: int = field(init=False)
    _counted: tuple[tuple[str, _Counted], ...] = field(init=False, repr=False)
    _actual: Callable[[Mapping[str, Any]], int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        roots = self.roots
        object.__setattr__(self, "requested", sum(node.requested() for node in roots.values()))
        counted = tuple(
            (key, node_counted)
            for key, node in roots.items()
            if (node_counted := node.counted()) is not None
        )
        object.__setattr__(self, "_counted", counted)
        object.__setattr__(self, "_actual", _compile_actual(counted))

    def actual(self, data: Mapping[str, Any] | None) -> int:
        if data is None:
            return 0
        return self._actual(data)

    def actual_by_walking(self, data: Mapping[str, Any] | None) -> int:
        """`actual`, by the general walk its compiled form must agree with (for the tests)."""
        if data is None:
            return 0
        return sum(_measure(counted, data[key]) for key, counted in self._counted if key in data)


# A cost node reduced to what `actual` needs: its weight, and its costing keys below.
_Counted = tuple[int, tuple[tuple[str, "_Counted"], ...]]


def _measure(counted: _Counted, value: Any) -> int:
    weight, children = counted
    if isinstance(value, list):
        total = 0
        for item in value:
            if isinstance(item, dict):
                total += weight + _below(children, item) if children else weight
            elif item is not None:
                total += _measure(counted, item)
        return total
    if value is None:
        return 0
    if children and isinstance(value, dict):
        return weight + _below(children, value)
    return weight


def _below(children: tuple[tuple[str, _Counted], ...], value: dict[str, Any]) -> int:
    """What the costing keys of one returned object cost; an object below with no costing
    keys of its own (a Money, a product of scalars) is counted here, without a call."""
    total = 0
    for key, child in children:
        found = value.get(key)
        if found is None:
            continue
        if not child[1] and isinstance(found, dict):
            total += child[0]
        else:
            total += _measure(child, found)
    return total


# Deeper trees than this are measured by the general walk below the limit (a loop per level:
# Python allows 20 nested blocks).
_COMPILED_DEPTH = 12


def _compile_actual(roots: tuple[tuple[str, _Counted], ...]) -> Callable[[Mapping[str, Any]], int]:
    """`actual` written out for one cost tree: a loop per list and a test per key, where the
    general walk (`_measure`) makes a call per returned object (a nested page returns
    thousands). Plain dicts and lists (what both executors return) take the written-out path;
    anything else goes to `_measure`, so the two always agree."""
    names: dict[str, Any] = {"measure": _measure}
    lines = ["def actual(data):", "    total = 0"]

    def constant(counted: _Counted) -> str:
        name = f"C{len(names)}"
        names[name] = counted
        return name

    def node(counted: _Counted, value: str, depth: int, indent: str) -> None:
        weight, children = counted
        if depth >= _COMPILED_DEPTH:
            lines.append(f"{indent}if {value} is not None:")
            lines.append(f"{indent}    total += measure({constant(counted)}, {value})")
            return
        # One loop over the objects at this key (a list's, or the one object): the keys below
        # are written once per key of the tree, so the code grows with the tree, not 2^depth.
        v, each, item = f"v{depth}", f"l{depth}", f"i{depth}"
        lines.append(f"{indent}{v} = {value}")
        lines.append(f"{indent}if type({v}) is dict:")
        lines.append(f"{indent}    {each} = ({v},)")
        lines.append(f"{indent}elif type({v}) is list:")
        lines.append(f"{indent}    {each} = {v}")
        lines.append(f"{indent}else:")
        lines.append(f"{indent}    {each} = ()")
        lines.append(f"{indent}    if {v} is not None:")
        lines.append(f"{indent}        total += measure({constant(counted)}, {v})")
        lines.append(f"{indent}for {item} in {each}:")
        lines.append(f"{indent}    if type({item}) is dict:")
        lines.append(f"{indent}        total += {weight}")
        below(children, item, depth, indent + "        ")
        lines.append(f"{indent}    elif {item} is not None:")
        lines.append(f"{indent}        total += measure({constant(counted)}, {item})")

    def below(
        children: tuple[tuple[str, _Counted], ...], parent: str, depth: int, indent: str
    ) -> None:
        for key, child in children:
            node(child, f"{parent}.get({key!r})", depth + 1, indent)

    for key, counted in roots:
        node(counted, f"data.get({key!r})", 0, "    ")
    lines.append("    return total")
    exec(compile("\n".join(lines), "<cost actual>", "exec"), names)
    actual: Callable[[Mapping[str, Any]], int] = names["actual"]
    return actual


def cost_variables(document: DocumentNode) -> frozenset[str]:
    """The variables an operation's cost may depend on: those in `@skip`/`@include` and in the
    `first` and `ids` arguments anywhere in the document. For other values of the rest, the
    cost tree is the same, so it can be kept per document and these values."""
    names: set[str] = set()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            _collect_cost_variables(definition.selection_set, names)
    return frozenset(names)


def _collect_cost_variables(selection_set: SelectionSetNode, names: set[str]) -> None:
    for selection in selection_set.selections:
        for directive in selection.directives or ():
            if directive.name.value in _DIRECTIVES:
                for argument in directive.arguments or ():
                    _variables_in(argument.value, names)
        if isinstance(selection, FieldNode):
            for argument in selection.arguments or ():
                if argument.name.value in (_SLICE, _IDS):
                    _variables_in(argument.value, names)
        inner = getattr(selection, "selection_set", None)
        if inner is not None:
            _collect_cost_variables(inner, names)


def _variables_in(value: ValueNode, names: set[str]) -> None:
    if isinstance(value, VariableNode):
        names.add(value.name.value)
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _variables_in(item, names)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            _variables_in(field.value, names)


_DIRECTIVES = (GraphQLSkipDirective.name, GraphQLIncludeDirective.name)


def _is_plumbing(type_: GraphQLNamedType) -> bool:
    name = type_.name
    return name.endswith(("Connection", "Edge")) or name == "PageInfo"


def _is_list(type_: GraphQLOutputType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class CostAnalysis:
    """Builds operations' cost trees for one schema and one set of cost settings."""

    def __init__(self, schema: GraphQLSchema, settings: CostSettings) -> None:
        self._schema = schema
        self.settings = settings

    def cost(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> Cost:
        root = self._schema.get_root_type(operation.operation)
        assert root is not None  # validation has checked the operation type exists
        walk = _Walk(self, fragments, variables, operation.operation is OperationType.MUTATION)
        return Cost(walk.selection_set(root, operation.selection_set, None, root=True))

    def weight(
        self, parent: GraphQLObjectType | Any, name: str, type_: GraphQLNamedType, write: bool
    ) -> int:
        configured = self.settings.field_weights.get(f"{parent.name}.{name}")
        if configured is not None:
            return configured
        if write:
            return MUTATION_WEIGHT
        if not is_composite_type(type_) or _is_plumbing(type_):
            return 0
        return 1


class _Walk:
    def __init__(
        self,
        analysis: CostAnalysis,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
        mutation: bool,
    ) -> None:
        self._analysis = analysis
        self._fragments = fragments
        self._variables = variables
        self._mutation = mutation
        self._done: dict[tuple[str, int | None, bool], dict[str, CostNode]] = {}

    def _included(self, node: SelectionNode) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self._variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self._variables)
        return not (include is not None and include.get("if") is False)

    def selection_set(
        self,
        parent: Any,
        selection_set: SelectionSetNode,
        slice_: int | None,
        root: bool = False,
    ) -> dict[str, CostNode]:
        """The keys a selection set adds; `slice_` is the enclosing connection's page size."""
        keys: dict[str, CostNode] = {}

        def add(key: str, node: CostNode) -> None:
            mine = keys.get(key)
            if mine is None:
                keys[key] = node
            else:
                mine.merge(node)

        schema = self._analysis._schema
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name.startswith("__"):
                    continue  # introspection is answered from memory
                definition: GraphQLField | None = getattr(parent, "fields", {}).get(name)
                if definition is None:
                    continue  # validation refuses unknown fields; nothing to charge
                add(
                    selection.alias.value if selection.alias else name,
                    self._field(parent, selection, definition, slice_, root),
                )
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = (
                    schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                inner = self.selection_set(
                    condition or parent, selection.selection_set, slice_, root=root
                )
            elif isinstance(selection, FragmentSpreadNode):
                inner = self._fragment(selection.name.value, slice_, root)
            else:  # pragma: no cover - the grammar has no other selections
                continue
            for key, node in inner.items():
                add(key, _copy(node))
        return keys

    def _fragment(self, name: str, slice_: int | None, root: bool) -> dict[str, CostNode]:
        done = self._done.get((name, slice_, root))
        if done is not None:
            return done
        definition = self._fragments.get(name)
        keys: dict[str, CostNode] = {}
        if definition is not None:
            type_ = self._analysis._schema.get_type(definition.type_condition.name.value)
            if type_ is not None:
                # A cycle (refused by validation) ends here.
                self._done[(name, slice_, root)] = keys
                keys.update(self.selection_set(type_, definition.selection_set, slice_, root))
        return keys

    def _field(
        self,
        parent: Any,
        node: FieldNode,
        definition: GraphQLField,
        slice_: int | None,
        root: bool,
    ) -> CostNode:
        settings = self._analysis.settings
        type_ = get_named_type(definition.type)
        weight = self._analysis.weight(parent, node.name.value, type_, self._mutation and root)
        inner_slice: int | None = None
        size = 1
        if _SLICE in definition.args or _IDS in definition.args:
            arguments = get_argument_values(definition, node, self._variables)
            if _SLICE in definition.args and _is_plumbing(type_):
                # A connection: its edges come `first` at a time.
                first = arguments.get(_SLICE)
                if first is None:
                    first = definition.args[_SLICE].default_value
                inner_slice = max(0, first if isinstance(first, int) else 0)
            elif isinstance(arguments.get(_IDS), list):
                size = len(arguments[_IDS])
        if _is_list(definition.type) and size == 1 and _IDS not in definition.args:
            size = (
                slice_
                if slice_ is not None and node.name.value == "edges"
                else (settings.list_size)
            )
        children = (
            self.selection_set(type_, node.selection_set, inner_slice)
            if node.selection_set is not None
            else {}
        )
        return CostNode(weight, size, children)


def _copy(node: CostNode) -> CostNode:
    """Merging must not change a node shared with another key (a memoised fragment's)."""
    return CostNode(node.weight, node.size, {k: _copy(c) for k, c in node.children.items()})
