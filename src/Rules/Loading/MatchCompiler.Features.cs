using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Kernel;
using DriverAudit.Rules.Lists;
using DriverAudit.Rules.Patterns;
using DriverAudit.Rules.Predicates;
using DriverAudit.Rules.Yaml;

namespace DriverAudit.Rules.Loading;

/// <summary>Compilers for module, string, version-info, signature, hash, call and instruction features.</summary>
internal sealed partial class MatchCompiler
{
    // One vocabulary with the scanner (see docs/rule-language.md): exactly the names its instruction facts carry.
    public static readonly string[] Mnemonics = InstructionNames.Mnemonics;
    public static readonly string[] ControlRegisters = InstructionNames.ControlRegisters;

    private Predicate? CompileModule(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'module'") is not { } map) return null;
        string[] keys = ["origin", "name", "path"];
        bool ok = read.OnlyKeys(map, "'module'", keys);
        if (map.Entries.Count == 0) return Fail(map, "'module' needs at least one of origin, name, path");
        string? origin = null;
        FilterPattern? name = null, path = null;
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "origin":
                    origin = read.String(v, "'origin'");
                    if (origin is not null and not ("file" or "dump" or "unloaded")) { Errors.Add(v, $"'origin' must be file, dump or unloaded, found '{origin}'"); origin = null; }
                    ok &= origin is not null;
                    break;
                case "name":
                    name = Filter(v, "'name'");
                    ok &= name is not null;
                    break;
                case "path":
                    path = Filter(v, "'path'");
                    ok &= path is not null;
                    break;
            }
        }
        return ok ? new ModuleFeature(origin, name, path) { Line = key.Line, Column = key.Column } : null;
    }

    private Predicate? CompileString(YamlScalar key, YamlNode value)
    {
        if (value is YamlScalar { IsNull: false } scalar)
        {
            if (scalar.Value.Length == 0) return Fail(value, "'string' must not be empty");
            return new StringFeature(scalar.Value, false, false, null, StringEncodings.Any) { Line = key.Line, Column = key.Column };
        }
        if (read.Mapping(value, "'string' (a literal or a mapping)") is not { } map) return null;
        string[] forms = ["text", "ascii", "utf16", "regex"];
        bool ok = read.OnlyKeys(map, "'string'", [.. forms, "ignore-case", "whole", "encoding", "referenced"]);
        var given = map.Entries.Where(e => forms.Contains(e.Key.Value)).ToList();
        if (given.Count != 1)
            return Fail(given.Count == 0 ? map : given[1].Key, "'string' takes exactly one of text, ascii, utf16, regex");
        var (formKey, formValue) = given[0];
        bool? ignoreCase = null, whole = null, referenced = null;
        StringEncodings? encoding = null;
        YamlScalar? encodingKey = null;
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "ignore-case": ignoreCase = read.Bool(v, "'ignore-case'"); ok &= ignoreCase is not null; break;
                case "whole": whole = read.Bool(v, "'whole'"); ok &= whole is not null; break;
                case "referenced": referenced = read.Bool(v, "'referenced'"); ok &= referenced is not null; break;
                case "encoding":
                    encodingKey = k;
                    encoding = read.String(v, "'encoding'") switch
                    {
                        "ascii" => StringEncodings.Ascii,
                        "utf16" => StringEncodings.Utf16,
                        "any" => StringEncodings.Any,
                        null => null,
                        var e => Invalid<StringEncodings>(v, $"'encoding' must be ascii, utf16 or any, found '{e}'"),
                    };
                    ok &= encoding is not null;
                    break;
            }
        }
        if (read.String(formValue, $"'{formKey.Value}'") is not { } text || !ok) return null;
        if (encodingKey is not null && formKey.Value is "ascii" or "utf16")
            return Fail(encodingKey, $"'{formKey.Value}' already names the encoding; 'encoding' goes with text or regex");
        if (formKey.Value == "regex")
        {
            if (ignoreCase is not null) return Fail(map, "'ignore-case' does not apply to a regex; add the i flag (/.../i)");
            if (whole is not null) return Fail(map, "'whole' does not apply to a regex; anchor it with ^ and $");
            if (!NamePattern.LooksLikeRegex(text)) return Fail(formValue, $"'regex' must be written /pattern/flags, found '{text}'");
            var pattern = NamePattern.Parse(text, false, out var error, allowWhitespace: true);
            if (pattern is null) return Fail(formValue, error!);
            return new StringFeature(null, false, false, pattern, encoding ?? StringEncodings.Any, referenced ?? false) { Line = key.Line, Column = key.Column };
        }
        var enc = formKey.Value switch { "ascii" => StringEncodings.Ascii, "utf16" => StringEncodings.Utf16, _ => encoding ?? StringEncodings.Any };
        return new StringFeature(text, ignoreCase ?? false, whole ?? false, null, enc, referenced ?? false) { Line = key.Line, Column = key.Column };
    }

    private Predicate? VersionInfo(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'version-info' (e.g. {CompanyName: \"*Contoso*\"})") is not { } map) return null;
        if (map.Entries.Count == 0) return Fail(map, "'version-info' needs at least one key such as CompanyName");
        var entries = new List<KeyValuePair<string, FilterPattern>>();
        bool ok = true;
        foreach (var (k, v) in map.Entries)
        {
            if (Filter(v, $"'{k.Value}'") is { } p) entries.Add(new(k.Value, p)); else ok = false;
        }
        return ok ? new VersionInfoFeature([.. entries]) { Line = key.Line, Column = key.Column } : null;
    }

    private Predicate? Signature(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'signature'") is not { } map) return null;
        bool ok = read.OnlyKeys(map, "'signature'", ["present", "signer", "issuer", "test"]);
        if (map.Entries.Count == 0) return Fail(map, "'signature' needs at least one of present, signer, issuer, test");
        bool? present = null, test = null;
        FilterPattern? signer = null, issuer = null;
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "present": present = read.Bool(v, "'present'"); ok &= present is not null; break;
                case "test": test = read.Bool(v, "'test'"); ok &= test is not null; break;
                case "signer": signer = Filter(v, "'signer'"); ok &= signer is not null; break;
                case "issuer": issuer = Filter(v, "'issuer'"); ok &= issuer is not null; break;
            }
        }
        if (ok && present == false && map.Entries.Count > 1)
            return Fail(map, "'present: false' cannot be combined with signer, issuer or test: an absent signature has no signer");
        return ok ? new SignatureFeature(present, signer, issuer, test) { Line = key.Line, Column = key.Column } : null;
    }

    private Predicate? Hash(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'hash'") is not { } map) return null;
        bool ok = read.OnlyKeys(map, "'hash'", ["sha256", "authentihash", "sha256-in", "authentihash-in"]);
        if (map.Entries.Count != 1)
            return Fail(map.Entries.Count == 0 ? map : map.Entries[1].Key, "'hash' takes exactly one of sha256, authentihash, sha256-in, authentihash-in; combine several with 'any:'");
        if (!ok) return null;
        var (k, v) = map.Entries[0];
        var kind = k.Value.StartsWith("sha256", StringComparison.Ordinal) ? HashKind.FileSha256 : HashKind.Authentihash;
        HashList? list;
        if (k.Value.EndsWith("-in", StringComparison.Ordinal))
        {
            if (read.String(v, $"'{k.Value}' (a list path or @name)") is not { } reference) return null;
            if (reference == "@") return Fail(v, "a named list needs a name after '@', e.g. @known-vulnerable");
            list = lists.Resolve(reference, v, Errors);
        }
        else list = InlineHashes(v, k.Value, kind);
        return list is null ? null : new HashFeature(kind, list) { Line = key.Line, Column = key.Column };
    }

    private HashList? InlineHashes(YamlNode value, string what, HashKind kind)
    {
        if (read.Strings(value, $"'{what}'") is not { } items) return null;
        var list = new HashList();
        bool ok = true;
        foreach (var (node, text) in items)
        {
            if (HashList.IsHex(text, 64))
                (kind == HashKind.FileSha256 ? list.FileSha256 : list.AuthentihashSha256).Add(text.ToLowerInvariant());
            else if (kind == HashKind.Authentihash && HashList.IsHex(text, 40))
                list.AuthentihashSha1.Add(text.ToLowerInvariant());
            else
            {
                Errors.Add(node, kind == HashKind.FileSha256
                    ? $"'{text}' is not a SHA-256 hash (64 hex digits)"
                    : $"'{text}' is not an Authenticode SHA-256 (64 hex digits) or SHA-1 (40 hex digits) hash");
                ok = false;
            }
        }
        return ok ? list : null;
    }

    private Predicate? Instruction(YamlScalar key, YamlNode value)
    {
        if (value is YamlScalar { IsNull: false })
            return Mnemonic(value) is { } single ? new InstructionFeature(single, null) { Line = key.Line, Column = key.Column } : null;
        if (read.Mapping(value, "'instruction'") is not { } map) return null;
        bool ok = read.OnlyKeys(map, "'instruction'", ["mnemonic", "mov-to"]);
        if (map.Entries.Count != 1)
            return Fail(map.Entries.Count == 0 ? map : map.Entries[1].Key, "'instruction' takes exactly one of mnemonic, mov-to");
        if (!ok) return null;
        var (k, v) = map.Entries[0];
        if (k.Value == "mnemonic")
            return Mnemonic(v) is { } m ? new InstructionFeature(m, null) { Line = key.Line, Column = key.Column } : null;
        return OneOf(v, "'mov-to'", ControlRegisters) is { } crs ? new InstructionFeature(null, crs) { Line = key.Line, Column = key.Column } : null;
    }

    private string[]? Mnemonic(YamlNode value)
    {
        var result = OneOf(value, "'mnemonic'", Mnemonics);
        if (result is null && value is YamlScalar { Value: "mov" })
            Errors.Add(value, "write control-register moves as {mov-to: [cr0, cr4]}");
        return result;
    }

    private string[]? OneOf(YamlNode value, string what, string[] known)
    {
        if (read.Strings(value, what) is not { } items) return null;
        bool ok = true;
        foreach (var (node, text) in items)
        {
            if (known.Contains(text)) continue;
            Errors.Add(node, $"unknown {what} value '{text}' (expected {string.Join(", ", known)})");
            ok = false;
        }
        return ok ? [.. items.Select(i => i.Value).Distinct()] : null;
    }

    private Predicate? Call(YamlScalar key, YamlNode value)
    {
        if (read.Mapping(value, "'call'") is not { } map) return null;
        bool ok = read.OnlyKeys(map, "'call'", ["api", "tag", "pool-type", "pool-flags", "arg"]);
        var apiNode = Find(map, "api");
        if (apiNode is null) { Errors.Add(map, "'call' needs 'api': the imported function(s) called"); return null; }
        var apis = new List<ImportFeature>();
        if (read.Strings(apiNode, "'api'") is { } apiTexts)
        {
            foreach (var (node, text) in apiTexts)
            {
                if (ImportString(key, new YamlScalar(node.Line, node.Column, text, false)) is ImportFeature f) apis.Add(f);
                else ok = false;
            }
        }
        else ok = false;

        var constraints = new List<ArgConstraint>();
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "tag":
                    ok &= Named(k, v, ArgRole.Tag, PoolApis.WithTag, apis, constraints, ["eq", "ne", "in", "not-in", "unknown"]);
                    break;
                case "pool-type":
                    ok &= Named(k, v, ArgRole.PoolType, PoolApis.WithPoolType, apis, constraints, ["mask", "eq", "ne", "in", "not-in", "unknown"]);
                    break;
                case "pool-flags":
                    ok &= Named(k, v, ArgRole.PoolFlags, PoolApis.WithPoolFlags, apis, constraints, ["has-any", "has-all", "lacks", "mask", "eq", "ne", "unknown"]);
                    break;
                case "arg":
                    if (read.Mapping(v, "'arg' (e.g. {2: {eq: 0x206B6444}})") is not { } args) { ok = false; break; }
                    if (args.Entries.Count == 0) { Errors.Add(args, "'arg' needs at least one argument index"); ok = false; }
                    foreach (var (ik, iv) in args.Entries)
                    {
                        if (!ik.Plain || !int.TryParse(ik.Value, System.Globalization.NumberStyles.None, null, out int index))
                        {
                            Errors.Add(ik, $"argument index must be a number 0-{CallFact.TrackedArgs - 1}, found '{ik.Value}'");
                            ok = false;
                            continue;
                        }
                        if (index >= CallFact.TrackedArgs)
                        {
                            Errors.Add(ik, $"argument {index} is never known: the scanner recovers arguments 0-{CallFact.TrackedArgs - 1} of a call");
                            ok = false;
                            continue;
                        }
                        var test = Values(iv, $"'arg {index}'", ArgRole.Raw, ["mask", "eq", "ne", "in", "not-in", "has-any", "has-all", "lacks", "unknown"]);
                        if (test is null) ok = false; else constraints.Add(new ArgConstraint(ArgRole.Raw, index, test));
                    }
                    break;
            }
        }
        return ok ? new CallFeature([.. apis], [.. constraints]) { Line = key.Line, Column = key.Column } : null;
    }

    /// <summary>A named pool argument; refused when none of the <c>api</c> patterns can name an API that has it.</summary>
    private bool Named(YamlScalar k, YamlNode v, ArgRole role, IEnumerable<string> having, List<ImportFeature> apis,
        List<ArgConstraint> into, string[] keys)
    {
        var candidates = having.ToList();
        if (apis.Count > 0 && !candidates.Any(name => apis.Any(a => a.Matches(new ImportFact("ntoskrnl.exe", name, null, false)))))
        {
            Errors.Add(k, $"'{k.Value}' is known only for {string.Join(", ", candidates)}; none of them is in 'api' (use 'arg: {{N: ...}}' for other APIs)");
            return false;
        }
        var test = Values(v, $"'{k.Value}'", role, keys);
        if (test is null) return false;
        into.Add(new ArgConstraint(role, -1, test));
        return true;
    }

    /// <summary>
    /// A value test: a single value (shorthand for eq) or a mapping of the allowed keys. Tags may be written as
    /// 4-character strings in memory order ("Ddk ").
    /// </summary>
    private ValueTest? Values(YamlNode node, string what, ArgRole role, string[] keys)
    {
        if (node is YamlScalar { IsNull: false })
            return Value(node, what, role) is ulong single ? new ValueTest { Eq = single } : null;
        if (read.Mapping(node, $"{what} (a value or a mapping of {string.Join(", ", keys)})") is not { } map) return null;
        bool ok = read.OnlyKeys(map, what, keys);
        if (map.Entries.Count == 0) { Errors.Add(map, $"{what} needs at least one of {string.Join(", ", keys)}"); return null; }
        ulong mask = ulong.MaxValue;
        ulong? eq = null, ne = null, hasAny = null, hasAll = null, lacks = null;
        ulong[]? @in = null, notIn = null;
        bool? unknown = null;
        bool masked = false;
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "mask": masked = true; ok &= Set(Value(v, "'mask'", ArgRole.Raw), ref mask); break;
                case "eq": eq = Value(v, "'eq'", role); ok &= eq is not null; break;
                case "ne": ne = Value(v, "'ne'", role); ok &= ne is not null; break;
                case "in": @in = ValueList(v, "'in'", role); ok &= @in is not null; break;
                case "not-in": notIn = ValueList(v, "'not-in'", role); ok &= notIn is not null; break;
                case "has-any": hasAny = Bits(v, "'has-any'"); ok &= hasAny is not null; break;
                case "has-all": hasAll = Bits(v, "'has-all'"); ok &= hasAll is not null; break;
                case "lacks": lacks = Bits(v, "'lacks'"); ok &= lacks is not null; break;
                case "unknown": unknown = read.Bool(v, "'unknown'"); ok &= unknown is not null; break;
            }
        }
        if (!ok) return null;
        if (masked && eq is null && ne is null && @in is null && notIn is null)
        {
            Errors.Add(map, $"'mask' in {what} needs eq, ne, in or not-in to compare the masked value with");
            return null;
        }
        return new ValueTest { Mask = mask, Eq = eq, Ne = ne, In = @in, NotIn = notIn, HasAny = hasAny, HasAll = hasAll, Lacks = lacks, Unknown = unknown };
    }

    private static bool Set(ulong? value, ref ulong target)
    {
        if (value is not ulong v) return false;
        target = v;
        return true;
    }

    /// <summary>An integer, or for tags a 4-character string in memory order.</summary>
    private ulong? Value(YamlNode node, string what, ArgRole role)
    {
        if (node is YamlScalar { Plain: true } s && NodeReader.TryParseInteger(s.Value, out _))
        {
            long? n = read.Integer(node, what, 0, role == ArgRole.Tag ? uint.MaxValue : long.MaxValue);
            return n is long v ? (ulong)v : null;
        }
        if (role == ArgRole.Tag && node is YamlScalar { IsNull: false } t)
        {
            if (t.Value.Length == 4 && t.Value.All(c => c <= 0xFF)) return PoolTag.FromText(t.Value);
            Errors.Add(node, $"a tag is 4 characters in memory order (e.g. \"Ddk \", trailing spaces count) or an integer, found '{t.Value}' ({t.Value.Length} characters)");
            return null;
        }
        Errors.Add(node, $"{what} must be an integer, found {node.Describe()}");
        return null;
    }

    private ulong[]? ValueList(YamlNode node, string what, ArgRole role)
    {
        if (read.Sequence(node, what) is not { } seq) return null;
        if (seq.Items.Count == 0) { Errors.Add(node, $"{what} must not be an empty list"); return null; }
        var values = new List<ulong>();
        bool ok = true;
        foreach (var item in seq.Items)
        {
            if (Value(item, $"each item of {what}", role) is ulong v) values.Add(v); else ok = false;
        }
        return ok ? [.. values] : null;
    }

    /// <summary>One integer or a list whose values are OR'ed into one bit mask.</summary>
    private ulong? Bits(YamlNode node, string what)
    {
        if (node is not YamlSequence) return Value(node, what, ArgRole.Raw) is ulong v && NonZero(node, what, v) ? v : null;
        var values = ValueList(node, what, ArgRole.Raw);
        if (values is null) return null;
        ulong bits = values.Aggregate(0UL, (a, b) => a | b);
        return NonZero(node, what, bits) ? bits : null;
    }

    private bool NonZero(YamlNode node, string what, ulong bits)
    {
        if (bits != 0) return true;
        Errors.Add(node, $"{what} with no bits set can never be meaningful");
        return false;
    }

    private FilterPattern? Filter(YamlNode value, string what)
    {
        if (read.Strings(value, what) is not { } items) return null;
        foreach (var (node, text) in items)
        {
            if (text == "!") { Errors.Add(node, $"{what}: '!' needs a pattern after it"); return null; }
            if (NamePattern.Parse(text.StartsWith('!') ? text[1..] : text, true, out var error, allowWhitespace: true) is null)
            {
                Errors.Add(node, $"{what}: {error}");
                return null;
            }
        }
        return FilterPattern.Parse(items.Select(i => i.Value), out _);
    }

    private T? Invalid<T>(YamlNode at, string message) where T : struct
    {
        Errors.Add(at, message);
        return null;
    }
}
