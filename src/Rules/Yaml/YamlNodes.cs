namespace DriverAudit.Rules.Yaml;

/// <summary>
/// A YAML node that remembers where it was written (1-based line and column), so every validation
/// error can name file:line:column. Only the three plain YAML shapes exist: no tags, no anchors.
/// </summary>
public abstract class YamlNode(int line, int column)
{
    public int Line { get; } = line;
    public int Column { get; } = column;

    /// <summary>What the node is, for "expected X, found Y" messages.</summary>
    public abstract string Describe();
}

public sealed class YamlScalar(int line, int column, string value, bool plain) : YamlNode(line, column)
{
    public string Value { get; } = value;

    /// <summary>Written without quotes or block style; only plain scalars can be null, booleans or numbers.</summary>
    public bool Plain { get; } = plain;

    /// <summary>YAML 1.2 core-schema null: an empty plain scalar, <c>~</c> or <c>null</c>.</summary>
    public bool IsNull => Plain && Value is "" or "~" or "null" or "Null" or "NULL";

    public override string Describe() => IsNull ? "null" : $"'{Shorten(Value)}'";

    private static string Shorten(string s) => s.Length <= 40 ? s : s[..37] + "...";
}

public sealed class YamlSequence(int line, int column, IReadOnlyList<YamlNode> items) : YamlNode(line, column)
{
    public IReadOnlyList<YamlNode> Items { get; } = items;
    public override string Describe() => "a list";
}

public sealed class YamlMapping(int line, int column, IReadOnlyList<KeyValuePair<YamlScalar, YamlNode>> entries)
    : YamlNode(line, column)
{
    /// <summary>Entries in the order written; keys are unique (the reader reports duplicates).</summary>
    public IReadOnlyList<KeyValuePair<YamlScalar, YamlNode>> Entries { get; } = entries;
    public override string Describe() => "a mapping";
}
