// The public surface the scanner codes against. Semantics: docs/rule-language.md.
using DriverAudit.Rules.Facts;
using DriverAudit.Rules.Loading;
using DriverAudit.Rules.Predicates;

namespace DriverAudit.Rules.Engine;

public enum RuleLevel { Note, Warning, Error }

/// <summary>How many findings a match yields: one per anchor (default), or one per image.</summary>
public enum RuleReport { PerAnchor, PerImage }

/// <summary>A rule text to load: a path for messages and the YAML itself.</summary>
public sealed record RuleSource(string Path, string Text);

/// <summary>A validation error at file:line:column (1-based).</summary>
public sealed record RuleError(string File, int Line, int Column, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {Message}";
}

public sealed class RuleLoadException(IReadOnlyList<RuleError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<RuleError> Errors { get; } = errors;
}

/// <summary>
/// Where one finding points: its kind, a stable key (never an address), the address when there is one, and the
/// values for message placeholders. Reports spell the kind and format the address themselves, once.
/// </summary>
/// <param name="Kind">One of <see cref="AnchorKind"/> (a single flag).</param>
/// <param name="Key">Stable identity within the image, e.g. "ntoskrnl.exe!ExAllocatePool", ".text", "image".</param>
/// <param name="Values">Placeholder values: import, module, section, ...</param>
public sealed record Anchor(AnchorKind Kind, string Key, IReadOnlyDictionary<string, string> Values)
{
    /// <summary>
    /// The RVA the anchor stands on: the instruction of a call or instruction anchor, the string, export or section
    /// start; null for the image and imports.
    /// </summary>
    public uint? Rva { get; init; }
}

/// <summary>One finding of one rule on one image.</summary>
public sealed record RuleMatch(Rule Rule, Anchor Anchor, string Message);

/// <summary>A compiled rule and its metadata (what SARIF's rules[] needs).</summary>
public sealed class Rule
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Title { get; init; }
    public required RuleLevel Level { get; init; }
    /// <summary>0.1–10.0 for security rules; null otherwise.</summary>
    public double? SecuritySeverity { get; init; }
    /// <summary>very-high | high | medium | low.</summary>
    public required string Precision { get; init; }
    public IReadOnlyList<string> Tags { get; init; } = [];
    public IReadOnlyList<int> Cwe { get; init; } = [];
    public IReadOnlyList<string> References { get; init; } = [];
    public required string Description { get; init; }
    /// <summary>Markdown.</summary>
    public required string Help { get; init; }
    public required string MessageTemplate { get; init; }
    /// <summary>Where the rule came from ("embedded:rules/DA1001.yaml" or a file path).</summary>
    public required string SourcePath { get; init; }
    public IReadOnlyList<string> MatchExamples { get; init; } = [];
    public IReadOnlyList<string> NoMatchExamples { get; init; } = [];
    /// <summary><c>report:</c> per-anchor (default) or per-image.</summary>
    public RuleReport Report { get; init; } = RuleReport.PerAnchor;
}

/// <summary>A set of rules compiled once and evaluated against many images (thread-safe).</summary>
public sealed partial class RuleSet
{
    private readonly IReadOnlyList<CompiledRule> _compiled;
    private readonly ImportIndex _index;
    private readonly bool[] _needsCode;
    /// <summary>Per rule, the distinct needles of its <c>string:</c> features (rule references followed).</summary>
    private readonly StringNeedle[][] _needles;

    private RuleSet(IReadOnlyList<CompiledRule> compiled, IReadOnlyList<RuleWarning>? warnings = null)
    {
        _compiled = compiled;
        _index = new ImportIndex(compiled);
        _needsCode = [.. compiled.Select(c => c.Match.NeedsCode())];
        // A stand-in of a rule left out by a selection (Index elsewhere) never evaluates: its needles are not searched.
        _needles = [.. compiled.Select((c, i) => c.Index == i ? NeedlesOf(c.Match) : [])];
        Rules = [.. compiled.Select(c => c.Rule)];
        Warnings = warnings ?? [];
    }

    /// <summary>Parses, validates and compiles. Throws <see cref="RuleLoadException"/> carrying every error found.</summary>
    public static RuleSet Load(IEnumerable<RuleSource> sources) => Load(sources, null);

    /// <summary>
    /// Parses, validates and compiles, resolving hash lists through <see cref="RuleLoadOptions.ResolveList"/>.
    /// Throws <see cref="RuleLoadException"/> carrying every error found; what does not stop loading is in <see cref="Warnings"/>.
    /// </summary>
    public static RuleSet Load(IEnumerable<RuleSource> sources, RuleLoadOptions? options)
    {
        var compiled = RuleLoader.Load(sources, options, out var warnings);
        return new(compiled, warnings);
    }

    /// <summary>Rules ordered by id.</summary>
    public IReadOnlyList<Rule> Rules { get; }

    /// <summary>Load warnings (e.g. a named hash list that was not supplied), ordered by file, line, column.</summary>
    public IReadOnlyList<RuleWarning> Warnings { get; }

    /// <summary>Matches ordered by rule id, then anchor key. Evaluates only what rules need.</summary>
    public IReadOnlyList<RuleMatch> Evaluate(IImageFacts facts) => Evaluate(facts, only: null, notEvaluated: null);

    /// <summary>
    /// As <see cref="Evaluate(IImageFacts)"/>; besides, every rule that needs code facts, could apply (its import
    /// prerequisites hold) and did not match while the image's code was not evaluated
    /// (<see cref="IImageFacts.CodeNotEvaluated"/>), or whose only code evidence is instructions the architecture does not
    /// have (<see cref="IImageFacts.AbsentInstructions"/>), is added to <paramref name="notEvaluated"/>, in id order.
    /// </summary>
    public IReadOnlyList<RuleMatch> Evaluate(IImageFacts facts, List<Rule>? notEvaluated) => Evaluate(facts, only: null, notEvaluated);

    /// <summary>
    /// As <see cref="Evaluate(IImageFacts, List{Rule})"/>, asking <paramref name="stop"/> before each rule: once it says
    /// true (a time budget ran out) the remaining rules are not evaluated but added to <paramref name="stopped"/> in id
    /// order, and the matches found so far are returned.
    /// </summary>
    public IReadOnlyList<RuleMatch> Evaluate(IImageFacts facts, List<Rule>? notEvaluated, Func<bool> stop, List<Rule> stopped)
    {
        ArgumentNullException.ThrowIfNull(stop);
        ArgumentNullException.ThrowIfNull(stopped);
        return Evaluate(facts, only: null, notEvaluated, stop, stopped);
    }

    private IReadOnlyList<RuleMatch> Evaluate(IImageFacts facts, bool[]? only, List<Rule>? notEvaluated, Func<bool>? stop = null, List<Rule>? stopped = null)
    {
        ArgumentNullException.ThrowIfNull(facts);
        // One pass over the imports rules out every rule whose import prerequisite is missing, before any
        // of its features (calls, strings, instructions, hashes) is looked at.
        var candidates = _index.Candidates(facts);
        var ctx = new EvalContext(facts, _compiled, () => NeedlesFor(candidates, only));
        List<RuleMatch>? matches = null;
        List<Anchor>? anchors = null;
        var halted = false;
        for (int r = 0; r < _compiled.Count; r++)
        {
            var rule = _compiled[r];
            if (candidates is not null && !candidates[r]) continue;
            if (only is not null && !only[r]) continue;
            if (stop is not null && (halted || (halted = stop())))
            {
                stopped!.Add(rule.Rule);
                continue;
            }
            if (ctx.TestRule(rule.Index) != Tri.True)
            {
                if (notEvaluated is not null && _needsCode[r]
                    && (facts.CodeNotEvaluated is not null || facts.AbsentInstructions is { } absent && rule.Match.ReadsOnlyAbsentInstructions(absent.Mnemonics)))
                    notEvaluated.Add(rule.Rule);
                continue;
            }
            anchors ??= [];
            anchors.Clear();
            if (rule.Rule.Report == RuleReport.PerAnchor) rule.Match.Collect(ctx, anchors);
            if (anchors.Count == 0) anchors.Add(ImageAnchor(ctx));
            anchors.Sort(AnchorOrder);
            matches ??= [];
            for (int i = 0; i < anchors.Count; i++)
            {
                // Sorted, so a duplicate (the same import reached through two branches) is adjacent.
                if (i > 0 && AnchorOrder(anchors[i - 1], anchors[i]) == 0) continue;
                matches.Add(new RuleMatch(rule.Rule, anchors[i], rule.Message.Render(anchors[i].Values)));
            }
        }
        return matches ?? (IReadOnlyList<RuleMatch>)[];
    }

    /// <summary>The distinct needles of the rules that may still match this image (its candidates, among those asked for).</summary>
    private List<StringNeedle> NeedlesFor(bool[]? candidates, bool[]? only)
    {
        var result = new List<StringNeedle>();
        for (int r = 0; r < _needles.Length; r++)
        {
            if (candidates is not null && !candidates[r] || only is not null && !only[r]) continue;
            foreach (var needle in _needles[r])
                if (!result.Contains(needle)) result.Add(needle);
        }
        return result;
    }

    private static StringNeedle[] NeedlesOf(Predicate match)
    {
        var found = new List<StringNeedle>();
        Walk(match, found, 0);
        return [.. found];

        static void Walk(Predicate node, List<StringNeedle> found, int depth)
        {
            if (depth >= 64) return; // reference cycles are refused at load; this only bounds the walk
            if (node is StringFeature { Needle: { } needle } && !found.Contains(needle)) found.Add(needle);
            if (node is RuleRefNode { IsBound: true } r) Walk(r.Target.Match, found, depth + 1);
            foreach (var child in node.Children) Walk(child, found, depth + 1);
        }
    }

    private static Anchor ImageAnchor(EvalContext ctx)
    {
        var values = ctx.Values(1);
        values["value"] = ctx.Artifact;
        return new Anchor(AnchorKind.Image, "image", values);
    }

    private static int AnchorOrder(Anchor a, Anchor b)
    {
        int byKey = string.CompareOrdinal(a.Key, b.Key);
        return byKey != 0 ? byKey : string.CompareOrdinal(a.Kind.Name(), b.Kind.Name());
    }
}
