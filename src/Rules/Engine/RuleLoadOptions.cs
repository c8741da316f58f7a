namespace DriverAudit.Rules.Engine;

/// <summary>The text of a hash list the host read for a rule, and a name for messages (usually its path).</summary>
/// <param name="Text">The whole list: a plain hash list, a LOLDrivers drivers.csv or drivers.json (detected from the content).</param>
/// <param name="Name">Where it came from, e.g. "lists/vulnerable.txt"; used in error messages.</param>
/// <param name="Error">Set when the host found the list but refused to read it ("is a FIFO (named pipe), not a
/// regular file"); <paramref name="Text"/> is then empty and the reference is a load error.</param>
public sealed record ListContent(string Text, string Name, string? Error = null);

/// <summary>Options for <see cref="RuleSet.Load(IEnumerable{RuleSource}, RuleLoadOptions?)"/>.</summary>
public sealed class RuleLoadOptions
{
    /// <summary>
    /// Reads a hash list named by a rule (<c>hash: {sha256-in: REF}</c>). Arguments: the reference as written —
    /// a path such as <c>lists/vulnerable.txt</c> (relative to the rule file, the host decides) or a named list
    /// such as <c>@known-vulnerable</c> — and the path of the rule file that names it (<see cref="RuleSource.Path"/>).
    /// Returns null when the list does not exist. Called once per distinct reference (per rule file for paths).
    /// A missing <c>@name</c> list is an empty list and a <see cref="RuleSet.Warnings"/> entry; a missing path is a load error.
    /// </summary>
    public Func<string, string, ListContent?>? ResolveList { get; init; }

    /// <summary>Most rules one set may hold (default <see cref="Loading.RuleLoader.MaxRules"/>); each costs memory and an index slot.</summary>
    public int MaxRules { get; init; } = Loading.RuleLoader.MaxRules;
}

/// <summary>Something worth telling the user that does not stop loading (e.g. a named hash list was not supplied).</summary>
public sealed record RuleWarning(string File, int Line, int Column, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: warning: {Message}";
}
