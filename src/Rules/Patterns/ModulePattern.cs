namespace DriverAudit.Rules.Patterns;

/// <summary>
/// A module test: always case-insensitive, and the image extension is optional on either side, so
/// <c>ntoskrnl</c>, <c>NTOSKRNL.EXE</c> and <c>ntoskrnl.exe</c> all name the same module.
/// <c>ntoskrnl.sys</c> does not match <c>ntoskrnl.exe</c>: an extension, when both sides have one, counts.
/// </summary>
internal sealed class ModulePattern
{
    private static readonly string[] Extensions = [".exe", ".sys", ".dll"];
    private readonly NamePattern _pattern;
    /// <summary>For an exact pattern written with an extension: the name without it.</summary>
    private readonly string? _stemOfExact;

    private ModulePattern(NamePattern pattern, string? stemOfExact)
    {
        _pattern = pattern;
        _stemOfExact = stemOfExact;
    }

    public string Text => _pattern.Text;

    public static ModulePattern? Parse(string text, out string? error)
    {
        var pattern = NamePattern.Parse(text, ignoreCase: true, out error);
        if (pattern is null) return null;
        bool exact = !NamePattern.LooksLikeRegex(text) && !Wildcard.HasWildcards(text);
        int stem = StemLength(text);
        return new ModulePattern(pattern, exact && stem < text.Length ? text[..stem] : null);
    }

    public bool IsMatch(string module)
    {
        var name = module.AsSpan();
        if (_pattern.IsMatch(name)) return true;
        int stem = StemLength(module);
        if (stem < name.Length) return _pattern.IsMatch(name[..stem]);
        return _stemOfExact is not null && name.Equals(_stemOfExact, StringComparison.OrdinalIgnoreCase);
    }

    private static int StemLength(string name)
    {
        foreach (var ext in Extensions)
            if (name.Length > ext.Length && name.EndsWith(ext, StringComparison.OrdinalIgnoreCase))
                return name.Length - ext.Length;
        return name.Length;
    }
}
