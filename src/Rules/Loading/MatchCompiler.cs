using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Patterns;
using DriverAudit.Rules.Predicates;
using DriverAudit.Rules.Yaml;

namespace DriverAudit.Rules.Loading;

/// <summary>
/// Compiles a <c>match:</c> tree into predicates, validating as it goes. Returns null for an invalid
/// node after recording why, and keeps compiling siblings so every error is reported.
/// </summary>
internal sealed partial class MatchCompiler(NodeReader read, ListResolver lists)
{
    private static readonly string[] Operators = ["all", "any", "not", "at-least", "count", "rule"];
    private static readonly string[] Features =
        ["import", "export", "section", "header", "characteristic", "module", "string", "version-info", "signature", "hash", "call", "instruction"];

    private ErrorSink Errors => read.Errors;

    /// <summary><c>rule:</c> references met while compiling, bound by the loader once all rules are known.</summary>
    public List<RuleRefNode> References { get; } = [];

    public Predicate? Compile(YamlNode node)
    {
        if (node is not YamlMapping map)
        {
            Errors.Add(node, $"a match node must be a mapping with one key such as 'import:' or 'all:', found {node.Describe()}");
            return null;
        }
        if (map.Entries.Count == 0) { Errors.Add(map, "empty match node; expected one key such as 'import:' or 'all:'"); return null; }
        for (int i = 1; i < map.Entries.Count; i++)
            Errors.Add(map.Entries[i].Key, $"a match node holds exactly one key, found '{map.Entries[i].Key.Value}' after '{map.Entries[0].Key.Value}'; combine several with 'all:' or 'any:'");

        var (key, value) = map.Entries[0];
        var at = (key.Line, key.Column);
        return key.Value switch
        {
            "all" => List(key, value, items => new AllNode(items) { Line = at.Line, Column = at.Column }),
            "any" => List(key, value, items => new AnyNode(items) { Line = at.Line, Column = at.Column }),
            "not" => Compile(value) is { } child ? new NotNode(child) { Line = at.Line, Column = at.Column } : null,
            "at-least" => AtLeast(key, value),
            "count" => Count(key, value),
            "rule" => Reference(key, value),
            "import" => Import(key, value),
            "export" => Export(key, value),
            "section" => Section(key, value),
            "header" => Header(key, value),
            "characteristic" => Characteristic(key, value),
            "module" => CompileModule(key, value),
            "string" => CompileString(key, value),
            "version-info" => VersionInfo(key, value),
            "signature" => Signature(key, value),
            "hash" => Hash(key, value),
            "call" => Call(key, value),
            "instruction" => Instruction(key, value),
            var other => Fail(key, $"unknown feature or operator '{other}' (expected one of {string.Join(", ", Operators.Concat(Features))})"),
        };
    }

    private Predicate? Fail(YamlNode at, string message)
    {
        Errors.Add(at, message);
        return null;
    }

    private Predicate[]? Children(YamlScalar key, YamlNode value)
    {
        var seq = read.Sequence(value, $"'{key.Value}'");
        if (seq is null) return null;
        if (seq.Items.Count == 0) { Errors.Add(value, $"'{key.Value}' needs at least one item"); return null; }
        var children = new List<Predicate>();
        bool ok = true;
        foreach (var item in seq.Items)
        {
            var child = Compile(item);
            if (child is null) ok = false; else children.Add(child);
        }
        return ok ? [.. children] : null;
    }

    private Predicate? List(YamlScalar key, YamlNode value, Func<Predicate[], Predicate> make) =>
        Children(key, value) is { } children ? make(children) : null;

    private Predicate? AtLeast(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'at-least'") is not { } map) return null;
        bool ok = read.OnlyKeys(map, "'at-least'", ["n", "of"]);
        var nNode = Find(map, "n");
        var ofNode = Find(map, "of");
        if (nNode is null) { Errors.Add(map, "'at-least' needs 'n'"); ok = false; }
        if (ofNode is null) { Errors.Add(map, "'at-least' needs 'of'"); ok = false; }
        long? n = nNode is null ? null : read.Integer(nNode, "'n'", 1, 1000);
        var children = ofNode is null ? null : Children(new YamlScalar(ofNode.Line, ofNode.Column, "of", true), ofNode);
        if (n is null || children is null || !ok) return null;
        if (n > children.Length)
            return Fail(nNode!, $"'n' is {n} but 'of' lists only {children.Length} items, so this can never match");
        return new AtLeastNode((int)n, children) { Line = key.Line, Column = key.Column };
    }

    private Predicate? Count(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'count'") is not { } map) return null;
        bool ok = read.OnlyKeys(map, "'count'", ["of", "min", "max"]);
        var ofNode = Find(map, "of");
        var minNode = Find(map, "min");
        var maxNode = Find(map, "max");
        if (ofNode is null) { Errors.Add(map, "'count' needs 'of': an import, export, section, string, call or instruction feature"); ok = false; }
        if (minNode is null && maxNode is null) { Errors.Add(map, "'count' needs 'min', 'max' or both"); ok = false; }
        long? min = minNode is null ? 0 : read.Integer(minNode, "'min'", 0, 1_000_000);
        long? max = maxNode is null ? int.MaxValue : read.Integer(maxNode, "'max'", 0, 1_000_000);
        Predicate? of = ofNode is null ? null : Compile(ofNode);
        if (of is not null and not ItemFeature)
        {
            Errors.Add(ofNode!, "'count' counts the items of one import, export, section, string, call or instruction feature, not a logic node or an image-wide feature");
            ok = false;
        }
        if (!ok || min is null || max is null || of is null) return null;
        if (min > max) return Fail(minNode!, $"'min' ({min}) is greater than 'max' ({max})");
        if (min == 0 && maxNode is null) return Fail(minNode!, "'min: 0' without 'max' is always true");
        return new CountNode((ItemFeature)of, (int)min, (int)max) { Line = key.Line, Column = key.Column };
    }

    private Predicate? Reference(YamlScalar key, YamlNode value)
    {
        if (read.String(value, "'rule'") is not { } id) return null;
        if (!RuleIds.IsValid(id)) return Fail(value, $"'{id}' is not a valid rule id");
        var node = new RuleRefNode(id) { Line = value.Line, Column = value.Column };
        References.Add(node);
        return node;
    }

    private Predicate? Import(YamlScalar key, YamlNode value)
    {
        if (value is YamlScalar { IsNull: false } scalar) return ImportString(key, scalar);
        if (value is not YamlMapping map)
            return Fail(value, $"'import' expects a pattern such as 'ntoskrnl.exe!ExAllocatePool*' or a mapping {{name, module, ordinal, delayed}}, found {value.Describe()}");
        bool ok = read.OnlyKeys(map, "'import'", ["name", "module", "ordinal", "delayed"]);
        if (map.Entries.Count == 0) return Fail(map, "'import' needs at least one of name, module, ordinal, delayed");
        NamePattern? name = null;
        ModulePattern? module = null;
        long? ordinal = null;
        bool? delayed = null;
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "name":
                    if (read.String(v, "'name'") is not { } n) { ok = false; break; }
                    if (!NamePattern.LooksLikeRegex(n) && n.Contains('!')) { ok = false; Errors.Add(v, "'name' must not contain '!'; give the module with 'module:'"); break; }
                    if (n.StartsWith('#')) { ok = false; Errors.Add(v, "'name' must not start with '#'; give an ordinal with 'ordinal:'"); break; }
                    name = Pattern(v, n, ignoreCase: false);
                    ok &= name is not null;
                    break;
                case "module":
                    if (read.String(v, "'module'") is not { } m) { ok = false; break; }
                    module = Module(v, m);
                    ok &= module is not null;
                    break;
                case "ordinal":
                    ordinal = read.Integer(v, "'ordinal'", 0, ushort.MaxValue);
                    ok &= ordinal is not null;
                    break;
                case "delayed":
                    delayed = read.Bool(v, "'delayed'");
                    ok &= delayed is not null;
                    break;
            }
        }
        if (ok && name is not null && ordinal is not null)
            return Fail(map, "'import' takes 'name' or 'ordinal', not both: an import is by name or by ordinal");
        return ok ? new ImportFeature(name, module, (int?)ordinal, delayed) { Line = key.Line, Column = key.Column } : null;
    }

    /// <summary><c>Name</c>, <c>module!Name</c>, wildcards, <c>/regex/flags</c> (name only), <c>module!#12</c>.</summary>
    private Predicate? ImportString(YamlScalar key, YamlScalar value)
    {
        string text = value.Value;
        ModulePattern? module = null;
        string rest = text;
        int bang = NamePattern.LooksLikeRegex(text) ? -1 : text.IndexOf('!');
        if (bang >= 0)
        {
            string modulePart = text[..bang];
            rest = text[(bang + 1)..];
            if (modulePart.Length == 0) return Fail(value, $"'{text}' has an empty module before '!'");
            if (rest.Length == 0) return Fail(value, $"'{text}' has an empty function name after '!'");
            module = Module(value, modulePart);
            if (module is null) return null;
        }
        if (rest.StartsWith('#'))
        {
            if (!int.TryParse(rest.AsSpan(1), System.Globalization.NumberStyles.None, null, out int ordinal) || ordinal > ushort.MaxValue)
                return Fail(value, $"'{rest}' is not an ordinal (write '#' and a number 0-65535, e.g. hal.dll!#12)");
            return new ImportFeature(null, module, ordinal, null) { Line = key.Line, Column = key.Column };
        }
        var name = Pattern(value, rest, ignoreCase: false);
        return name is null ? null : new ImportFeature(name, module, null, null) { Line = key.Line, Column = key.Column };
    }

    private Predicate? Export(YamlScalar key, YamlNode value)
    {
        if (value is YamlScalar { IsNull: false } scalar)
        {
            if (scalar.Value.StartsWith('#'))
            {
                if (!int.TryParse(scalar.Value.AsSpan(1), System.Globalization.NumberStyles.None, null, out int ord) || ord > ushort.MaxValue)
                    return Fail(value, $"'{scalar.Value}' is not an ordinal (write '#' and a number 0-65535)");
                return new ExportFeature(null, ord, null, null) { Line = key.Line, Column = key.Column };
            }
            var p = Pattern(value, scalar.Value, ignoreCase: false);
            return p is null ? null : new ExportFeature(p, null, null, null) { Line = key.Line, Column = key.Column };
        }
        if (value is not YamlMapping map)
            return Fail(value, $"'export' expects a name pattern or a mapping {{name, ordinal, forwarder}}, found {value.Describe()}");
        bool ok = read.OnlyKeys(map, "'export'", ["name", "ordinal", "forwarder"]);
        if (map.Entries.Count == 0) return Fail(map, "'export' needs at least one of name, ordinal, forwarder");
        NamePattern? name = null, forwarder = null;
        long? ordinal = null;
        bool? forwarded = null;
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "name":
                    name = read.String(v, "'name'") is { } n ? Pattern(v, n, ignoreCase: false) : null;
                    ok &= name is not null;
                    break;
                case "ordinal":
                    ordinal = read.Integer(v, "'ordinal'", 0, ushort.MaxValue);
                    ok &= ordinal is not null;
                    break;
                case "forwarder" when v is YamlScalar { Plain: true, Value: "true" or "false" }:
                    forwarded = read.Bool(v, "'forwarder'");
                    break;
                case "forwarder":
                    // Forwarders read "NTOSKRNL.ExAllocatePool"; module case varies, so the test ignores case.
                    forwarder = read.String(v, "'forwarder' (true, false or a pattern)") is { } f ? Pattern(v, f, ignoreCase: true) : null;
                    ok &= forwarder is not null;
                    break;
            }
        }
        return ok ? new ExportFeature(name, (int?)ordinal, forwarded, forwarder) { Line = key.Line, Column = key.Column } : null;
    }

    private Predicate? Section(YamlScalar key, YamlNode value)
    {
        if (value is YamlScalar { IsNull: false } scalar)
        {
            var p = Pattern(value, scalar.Value, ignoreCase: false);
            return p is null ? null : new SectionFeature(p, null, null, null, null, null) { Line = key.Line, Column = key.Column };
        }
        if (value is not YamlMapping map)
            return Fail(value, $"'section' expects a name pattern or a mapping, found {value.Describe()}");
        string[] keys = ["name", "writable", "executable", "readable", "discardable", "page-aligned"];
        bool ok = read.OnlyKeys(map, "'section'", keys);
        if (map.Entries.Count == 0) return Fail(map, $"'section' needs at least one of {string.Join(", ", keys)}");
        NamePattern? name = null;
        var flags = new Dictionary<string, bool?>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Entries)
        {
            if (k.Value == "name")
            {
                name = read.String(v, "'name'") is { } n ? Pattern(v, n, ignoreCase: false) : null;
                ok &= name is not null;
            }
            else if (keys.Contains(k.Value))
            {
                flags[k.Value] = read.Bool(v, $"'{k.Value}'");
                ok &= flags[k.Value] is not null;
            }
        }
        if (!ok) return null;
        return new SectionFeature(name, flags.GetValueOrDefault("writable"), flags.GetValueOrDefault("executable"),
            flags.GetValueOrDefault("readable"), flags.GetValueOrDefault("discardable"), flags.GetValueOrDefault("page-aligned"))
        { Line = key.Line, Column = key.Column };
    }

    private Predicate? Header(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'header'") is not { } map) return null;
        string[] keys = ["machine", "subsystem", "dll-characteristics", "characteristics", "section-alignment", "file-alignment"];
        bool ok = read.OnlyKeys(map, "'header'", keys);
        if (map.Entries.Count == 0) return Fail(map, $"'header' needs at least one of {string.Join(", ", keys)}");
        string[]? machines = null, subsystems = null;
        (ushort Has, ushort Lacks) dll = default, file = default;
        Comparison[] sectionAlignment = [], fileAlignment = [];
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "machine":
                    machines = Names(v, "'machine'", MachineNames.Names);
                    ok &= machines is not null;
                    break;
                case "subsystem":
                    subsystems = Names(v, "'subsystem'", MachineNames.SubsystemNames);
                    ok &= subsystems is not null;
                    break;
                case "dll-characteristics":
                    ok &= Flags(v, "'dll-characteristics'", PeNames.DllCharacteristics, out dll);
                    break;
                case "characteristics":
                    ok &= Flags(v, "'characteristics'", PeNames.FileCharacteristics, out file);
                    break;
                case "section-alignment":
                    ok &= Comparisons(v, "'section-alignment'", out sectionAlignment);
                    break;
                case "file-alignment":
                    ok &= Comparisons(v, "'file-alignment'", out fileAlignment);
                    break;
            }
        }
        if (!ok) return null;
        return new HeaderFeature
        {
            Line = key.Line, Column = key.Column,
            Machines = machines, Subsystems = subsystems,
            DllHas = dll.Has, DllLacks = dll.Lacks, FileHas = file.Has, FileLacks = file.Lacks,
            SectionAlignment = sectionAlignment, FileAlignment = fileAlignment,
        };
    }

    private string[]? Names(YamlNode value, string what, IReadOnlySet<string> known)
    {
        if (read.Strings(value, what) is not { } items) return null;
        bool ok = true;
        foreach (var (node, name) in items)
        {
            if (known.Contains(name) || MachineNames.RawValue(name) is not null) continue;
            Errors.Add(node, $"unknown {what} value '{name}' (expected {string.Join(", ", known)}, or a raw value such as 0x01c4)");
            ok = false;
        }
        return ok ? [.. items.Select(i => i.Value)] : null;
    }

    private bool Flags(YamlNode value, string what, IReadOnlyDictionary<string, ushort> names, out (ushort Has, ushort Lacks) result)
    {
        result = default;
        if (read.Mapping(value, what) is not { } map) return false;
        bool ok = read.OnlyKeys(map, what, ["has", "lacks"]);
        if (map.Entries.Count == 0) { Errors.Add(map, $"{what} needs 'has', 'lacks' or both"); return false; }
        ushort has = 0, lacks = 0;
        foreach (var (k, v) in map.Entries)
        {
            if (k.Value is not ("has" or "lacks")) continue;
            if (read.Strings(v, $"'{k.Value}'") is not { } items) { ok = false; continue; }
            foreach (var (node, name) in items)
            {
                if (!names.TryGetValue(name, out ushort bit))
                {
                    Errors.Add(node, $"unknown {what} name '{name}' (expected {string.Join(", ", names.Keys)})");
                    ok = false;
                }
                else if (k.Value == "has") has |= bit;
                else lacks |= bit;
            }
        }
        if (ok && (has & lacks) != 0) { Errors.Add(map, $"{what} lists the same flag under 'has' and 'lacks', so this can never match"); ok = false; }
        result = (has, lacks);
        return ok;
    }

    private bool Comparisons(YamlNode value, string what, out Comparison[] result)
    {
        result = [];
        if (read.Mapping(value, what) is not { } map) return false;
        bool ok = read.OnlyKeys(map, what, ["lt", "le", "eq", "ne", "ge", "gt"]);
        if (map.Entries.Count == 0) { Errors.Add(map, $"{what} needs one of lt, le, eq, ne, ge, gt"); return false; }
        var list = new List<Comparison>();
        foreach (var (k, v) in map.Entries)
        {
            ComparisonOp? op = k.Value switch
            {
                "lt" => ComparisonOp.Lt,
                "le" => ComparisonOp.Le,
                "eq" => ComparisonOp.Eq,
                "ne" => ComparisonOp.Ne,
                "ge" => ComparisonOp.Ge,
                "gt" => ComparisonOp.Gt,
                _ => null,
            };
            if (op is null) continue;
            if (read.Integer(v, $"'{k.Value}'", 0, uint.MaxValue) is not long n) { ok = false; continue; }
            list.Add(new Comparison(op.Value, n));
        }
        result = [.. list];
        return ok;
    }

    private Predicate? Characteristic(YamlScalar key, YamlNode value)
    {
        if (read.String(value, "'characteristic'") is not { } name) return null;
        if (!Characteristics.Known.Contains(name))
            return Fail(value, $"unknown characteristic '{name}' (expected one of {string.Join(", ", Characteristics.Known.Order(StringComparer.Ordinal))})");
        return new CharacteristicFeature(name) { Line = key.Line, Column = key.Column };
    }

    private NamePattern? Pattern(YamlNode at, string text, bool ignoreCase)
    {
        var pattern = NamePattern.Parse(text, ignoreCase, out var error);
        if (pattern is null) Errors.Add(at, error!);
        return pattern;
    }

    private ModulePattern? Module(YamlNode at, string text)
    {
        var pattern = ModulePattern.Parse(text, out var error);
        if (pattern is null) Errors.Add(at, "module pattern: " + error);
        return pattern;
    }

    private static YamlNode? Find(YamlMapping map, string key)
    {
        foreach (var (k, v) in map.Entries)
            if (k.Value == key) return v;
        return null;
    }
}
