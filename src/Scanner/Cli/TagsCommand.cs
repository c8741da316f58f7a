using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DriverAudit.Rules.Kernel;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Configuration;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;
using DriverAudit.Scanner.PoolUsage;

namespace DriverAudit.Scanner.Cli;

/// <summary>
/// <c>driveraudit tags PATH... [--tag PATTERN] [--poolused FILE] [--format text|json|pooltag]</c>: the pool tags each
/// driver passes to the kernel allocators (untagged allocators as <c>None</c>), recovered from its call sites and
/// through its own wrapper functions. With <c>--tag</c>, only drivers (and their uses) that match: "which driver
/// allocates with this tag?". With <c>--poolused</c>, the same question for every row of a <c>!poolused</c> or
/// PoolMon listing.
/// </summary>
internal static class TagsCommand
{
    public static Command Create(CliIo io)
    {
        var paths = CliInputs.PathsArgument("Driver files, kernel dumps or folders.");
        var tag = new Option<string[]>("--tag")
        {
            Description = "Only drivers using a tag that matches (repeatable, or comma-separated). Memory order as !poolused prints it " +
                          "('Thre', 'Ddk' or 'Ddk '; trailing spaces optional); None = untagged allocators; wildcards * and ?; \\xNN for a byte.",
        };
        var ignoreCase = new Option<bool>("--ignore-case", "-i") { Description = "Match --tag patterns without regard to ASCII case." };
        var poolused = new Option<string?>("--poolused")
        {
            Description = "A text file holding WinDbg !poolused output or a PoolMon snapshot (poolmon -n): name the drivers that allocate each tag row.",
        };
        var format = CliInputs.FormatOption(
            "text, json (JSON Lines: one object per image, or per tag row with --poolused) or pooltag (pooltag.txt lines).", "text", TagsSettings.Formats);
        var include = new Option<string[]>("--include") { Description = "Glob of files to read inside folders. Default: **/*.sys and **/*.dmp." };
        var command = new Command("tags", "List the pool tags drivers pass to the kernel allocators and ExFreePoolWithTag, or find the drivers using a tag.")
        {
            paths, tag, ignoreCase, poolused, format, include,
        };
        command.SetAction(parse => CliInputs.RunWith(TagsSettings.From(new TagsFlags
        {
            Paths = parse.GetValue(paths) ?? [],
            Tag = parse.GetValue(tag) ?? [],
            IgnoreCase = parse.GetValue(ignoreCase),
            Poolused = parse.GetValue(poolused),
            Format = parse.GetValue(format),
            Include = parse.GetValue(include) ?? [],
        }, io.WorkingDirectory), io, settings => Execute(settings, io)));
        return command;
    }

    /// <summary>Lists tags with settings already decided: the inputs checked, --poolused read, then every image.</summary>
    internal static int Execute(TagsSettings settings, CliIo io)
    {
        if (!CliInputs.AllExist(settings.Paths, io, "read")) return ExitCodes.UsageOrConfiguration;
        PoolUsageListing? listing = null;
        if (settings.PoolusedPath is { } listingPath)
        {
            listing = ReadListing(listingPath, settings.Poolused!, io);
            if (listing is null) return ExitCodes.UsageOrConfiguration;
        }
        return new Run(io, [.. settings.Patterns], settings.Format, listing).Execute(
            CliInputs.Crawl(io, settings.Paths, new CrawlOptions(settings.Include, []), new SourceRoot(io.WorkingDirectory)));
    }

    private static PoolUsageListing? ReadListing(string fullPath, string displayPath, CliIo io)
    {
        try
        {
            var info = new FileInfo(fullPath);
            if (!info.Exists) { io.Error.WriteLine($"driveraudit: --poolused: '{displayPath}' does not exist."); return null; }
            if (info.Length > PoolUsageParser.MaxBytes) { io.Error.WriteLine($"driveraudit: --poolused: '{displayPath}' is larger than {PoolUsageParser.MaxBytes >> 20} MiB; it is not a pool listing."); return null; }
            using var reader = new StreamReader(fullPath, Encoding.Latin1, detectEncodingFromByteOrderMarks: true);
            var listing = PoolUsageParser.Parse(reader);
            if (listing.Rows.Count == 0)
            {
                io.Error.WriteLine($"driveraudit: --poolused: '{displayPath}' holds no tag rows of !poolused or PoolMon output.");
                return null;
            }
            return listing;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            io.Error.WriteLine($"driveraudit: --poolused: cannot read '{displayPath}': {e.Message}");
            return null;
        }
    }

    /// <summary>One analysed image: where it is, its base name, its tags.</summary>
    private sealed record ImageResult(string Path, string Module, ImageTags Tags);

    private sealed class Run(CliIo io, List<TagPattern> patterns, string format, PoolUsageListing? listing)
    {
        private readonly Utf8JsonWriter _json = new(io.StdoutStream);
        // pooltag and --poolused answer once every image is read; text and json stream image by image.
        private readonly List<ImageResult> _kept = [];
        private readonly bool[] _patternMatched = new bool[patterns.Count];
        private readonly HashSet<uint> _allTags = [];
        private bool _anyOutput;
        private int _images;

        public int Execute(IEnumerable<InputItem> inputs)
        {
            var failed = 0;
            foreach (var item in inputs)
            {
                var error = item is InputProblem problem ? problem.Message : Analyse(item);
                if (error is null) continue;
                failed++;
                io.Error.WriteLine($"driveraudit: {error}");
            }
            if (listing is not null) WriteListing(listing);
            else if (format == "pooltag") WritePoolTag();
            io.Out.Flush();
            _json.Dispose();
            var noMatch = ReportUnmatched();
            return ExitCodes.ForInputs(failed, noMatch ? ExitCodes.Findings : ExitCodes.Clean);
        }

        private string? Analyse(InputItem item)
        {
            using var input = InputOpener.Open(item);
            if (input.Image is PeImage image)
            {
                Add(new ImageResult(item.DisplayPath, Path.GetFileName(item.FullPath), TagIndex.Build(image, PeFacts.ImportsOf(image))));
                return null;
            }
            if (input.Dump is not KernelDump dump) return input.RefusalMessage;

            // Every module of the dump whose headers it holds, imports resolved through the IAT (the import table is often
            // gone). A triage dump holds parts of a few images: their tags are read from what it holds, as scan runs rules on it.
            if (dump.IsTriage)
                io.Error.WriteLine($"driveraudit: '{item.DisplayPath}' is a triage dump: only the {dump.Modules.Count(m => m.ImageAvailable)} module image(s) it holds part of are searched for tags.");
            foreach (var target in input.Modules)
            {
                if (!target.Module.ImageAvailable) continue;
                if (target.OpenImage().Image is not PeImage moduleImage)
                {
                    // A triage dump rarely holds a module's headers: expected there, worth a line elsewhere.
                    if (!dump.IsTriage) io.Error.WriteLine($"driveraudit: '{target.DisplayPath}' skipped: its headers are not in the dump.");
                    continue;
                }
                var facts = target.Facts(moduleImage);
                Add(new ImageResult(target.DisplayPath, target.Module.Name, TagIndex.Build(moduleImage, facts.Imports)));
            }
            return null;
        }

        private void Add(ImageResult image)
        {
            _images++;
            foreach (var u in image.Tags.Tags) _allTags.Add(u.Value);
            var uses = Select(image.Tags.Tags);
            if (patterns.Count > 0 && uses.Count == 0) return;
            var selected = image with { Tags = image.Tags with { Tags = uses } };
            if (listing is not null || format == "pooltag") { _kept.Add(selected); return; }
            _anyOutput = true;
            if (format == "json") WriteJson(selected);
            else WriteText(selected);
        }

        private List<TagUse> Select(IReadOnlyList<TagUse> uses)
        {
            if (patterns.Count == 0) return [.. uses];
            var kept = new List<TagUse>();
            foreach (var u in uses)
            {
                var any = false;
                for (var p = 0; p < patterns.Count; p++)
                    if (patterns[p].Matches(u.Value)) { any = true; _patternMatched[p] = true; }
                if (any) kept.Add(u);
            }
            return kept;
        }

        /// <summary>grep's convention: exit 1 when nothing matched, and say which pattern found nothing.</summary>
        private bool ReportUnmatched()
        {
            for (var p = 0; p < patterns.Count; p++)
            {
                if (_patternMatched[p]) continue;
                var hint = "";
                if (!patterns[p].IgnoreCase && PoolTag.TryParsePattern(patterns[p].Text, true, out var folded, out _))
                    foreach (var other in _allTags.Order())
                        if (folded.Matches(other)) { hint = $" ('{PoolTag.Format(other)}' matches with --ignore-case)"; break; }
                io.Error.WriteLine($"driveraudit: no scanned driver uses a tag matching '{patterns[p].Text}'{hint}.");
            }
            if (listing is not null) return !_anyOutput;
            return patterns.Count > 0 && !_anyOutput;
        }

        // ------------------------------------------------------------ per image

        private void WriteJson(ImageResult image)
        {
            var w = _json;
            w.WriteStartObject();
            w.WriteString("path", image.Path);
            w.WriteString("module", image.Module);
            w.WriteStartArray("tags");
            foreach (var u in image.Tags.Tags)
            {
                w.WriteStartObject();
                w.WriteString("tag", u.Tag);
                w.WriteString("value", $"0x{u.Value:x8}");
                w.WriteString("api", u.Api);
                if (u.ImportOnly)
                {
                    w.WriteNull("site");
                    w.WriteString("iatSlot", $"0x{u.SiteRva:x}");
                }
                else w.WriteString("site", $"0x{u.SiteRva:x}");
                if (u.Untagged) w.WriteBoolean("untagged", true);
                if (u.PoolType is { } type) w.WriteString("poolType", $"0x{type:x}");
                if (u.PoolFlags is { } flags) w.WriteString("poolFlags", $"0x{flags:x}");
                if (u.ViaWrapper)
                {
                    w.WriteStartArray("via");
                    foreach (var hop in u.Via)
                    {
                        w.WriteStartObject();
                        w.WriteString("call", $"0x{hop.CallRva:x}");
                        w.WriteString("wrapper", $"0x{hop.WrapperRva:x}");
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            // Code not analysed (ARM32, IA64, packed): the number of unknown sites is itself unknown, not 0.
            if (image.Tags.CodeNotEvaluated is { } why)
            {
                w.WriteNull("unknownTagSites");
                w.WriteString("codeNotEvaluated", why);
            }
            else w.WriteNumber("unknownTagSites", image.Tags.UnknownTagSites);
            w.WriteEndObject();
            CliInputs.EndJsonLine(w, io);
        }

        private void WriteText(ImageResult image)
        {
            var o = io.Out;
            o.WriteLine(image.Path);
            foreach (var u in image.Tags.Tags)
            {
                var extra = u.PoolType is { } t ? $" pool-type 0x{t:x}" : u.PoolFlags is { } f ? $" pool-flags 0x{f:x}" : "";
                var untagged = u.Untagged ? " (untagged)" : "";
                if (u.ImportOnly)
                {
                    o.WriteLine($"  '{u.Tag}' 0x{u.Value:x8} {u.Api}{untagged} imported (IAT slot 0x{u.SiteRva:x}); no call site in the code at hand");
                    continue;
                }
                o.WriteLine($"  '{u.Tag}' 0x{u.Value:x8} {u.Api}{untagged} at 0x{u.SiteRva:x}{extra}{Chain(u)}");
            }
            // With --tag the question is who uses that tag: a site whose tag is unknown answers nothing.
            if (patterns.Count == 0 && image.Tags.CodeNotEvaluated is { } why)
                o.WriteLine($"  tags unknown  the pool call sites were not analysed: {why}");
            if (patterns.Count == 0)
                foreach (var site in image.Tags.UnknownSites)
                    o.WriteLine($"  tag unknown   {site.Api.Name} at 0x{site.SiteRva:x} (args {string.Join(", ", site.Args)}; {site.Shape})");
            o.WriteLine();
        }

        /// <summary>" via call at 0x1050 → wrapper 0x1100": the constant's way from its caller to the allocator call.</summary>
        private static string Chain(TagUse u)
        {
            if (!u.ViaWrapper) return "";
            var sb = new StringBuilder(" via");
            foreach (var hop in u.Via) sb.Append(CultureInfo.InvariantCulture, $" call at 0x{hop.CallRva:x} → wrapper 0x{hop.WrapperRva:x} →");
            sb.Length -= 2; // the last arrow: the allocator call is the line's own site
            return sb.ToString();
        }

        // ------------------------------------------------------------ pooltag.txt

        /// <summary>
        /// pooltag.txt lines, "Tag - binary - description": one per (tag, driver name) whatever the number of sites
        /// and copies; when one name stands for several files (two usbd.sys), a <c>rem</c> line per file says which.
        /// </summary>
        private void WritePoolTag()
        {
            var lines = new SortedDictionary<(string Tag, string Module), (SortedSet<string> Apis, SortedSet<string> Paths)>(
                Comparer<(string Tag, string Module)>.Create((a, b) =>
                    string.CompareOrdinal(a.Tag, b.Tag) is var c and not 0 ? c : string.Compare(a.Module, b.Module, StringComparison.OrdinalIgnoreCase)));
            foreach (var image in _kept)
                foreach (var u in image.Tags.Tags)
                {
                    var key = (u.Tag, image.Module);
                    if (!lines.TryGetValue(key, out var entry)) lines[key] = entry = (new SortedSet<string>(StringComparer.Ordinal), new SortedSet<string>(StringComparer.Ordinal));
                    entry.Apis.Add(u.ViaWrapper ? u.Api + " via wrapper" : u.Untagged ? u.Api + " (untagged)" : u.Api);
                    entry.Paths.Add(image.Path);
                }
            var o = io.Out;
            foreach (var ((tagText, module), (apis, paths)) in lines)
            {
                _anyOutput = true;
                if (paths.Count > 1)
                    foreach (var p in paths) o.WriteLine($"rem {tagText} - {module}: {p}");
                o.WriteLine($"{tagText} - {module} - {string.Join(", ", apis)}");
            }
        }

        // ------------------------------------------------------------ --poolused

        private void WriteListing(PoolUsageListing usage)
        {
            // Per tag value: the drivers allocating with it, one entry per (image, how): direct, wrapper, import.
            var owners = new Dictionary<uint, List<Owner>>();
            foreach (var image in _kept)
                foreach (var group in image.Tags.Tags.Where(u => u.Allocates).GroupBy(u => (u.Value, Via: Via(u))).OrderBy(g => g.Key.Via, StringComparer.Ordinal))
                {
                    if (!owners.TryGetValue(group.Key.Value, out var list)) owners[group.Key.Value] = list = [];
                    list.Add(new Owner(image, group.Key.Via, group.Count(u => !u.ImportOnly)));
                }
            var rows = patterns.Count == 0 ? usage.Rows : usage.Rows.Where(r => patterns.Any(p => p.Matches(r.Tag))).ToList();
            if (format == "json")
            {
                foreach (var row in rows) WriteRowJson(row, owners.GetValueOrDefault(row.Tag) ?? []);
            }
            else WriteRowsText(usage, rows, owners);
            _anyOutput = rows.Any(r => owners.ContainsKey(r.Tag));
            if (!_anyOutput) io.Error.WriteLine("driveraudit: no scanned driver allocates any tag of the listing.");
        }

        /// <summary>A driver owning a tag row: "direct" call sites, sites reached "wrapper"-through, or only an "import".</summary>
        private sealed record Owner(ImageResult Image, string Via, int Sites);

        private static string Via(TagUse u) => u.ImportOnly ? "import" : u.ViaWrapper ? "wrapper" : "direct";

        private void WriteRowJson(PoolUsageRow row, List<Owner> drivers)
        {
            var w = _json;
            w.WriteStartObject();
            w.WriteString("tag", row.Text);
            w.WriteNumber("nonPagedAllocs", row.NonPagedAllocs);
            w.WriteNumber("nonPagedBytes", row.NonPagedBytes);
            w.WriteNumber("pagedAllocs", row.PagedAllocs);
            w.WriteNumber("pagedBytes", row.PagedBytes);
            if (row.Description is { } description) w.WriteString("description", description); else w.WriteNull("description");
            w.WriteStartArray("drivers");
            foreach (var d in drivers)
            {
                w.WriteStartObject();
                w.WriteString("path", d.Image.Path);
                w.WriteString("module", d.Image.Module);
                w.WriteNumber("sites", d.Sites);
                w.WriteString("via", d.Via);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            CliInputs.EndJsonLine(w, io);
        }

        /// <summary>One line per owned tag row in the listing's order, then the tags nobody scanned owns, wrapped.</summary>
        private void WriteRowsText(PoolUsageListing usage, IReadOnlyList<PoolUsageRow> rows, Dictionary<uint, List<Owner>> owners)
        {
            var o = io.Out;
            var owned = rows.Where(r => owners.ContainsKey(r.Tag)).ToList();
            var unknown = rows.Where(r => !owners.ContainsKey(r.Tag)).ToList();
            o.WriteLine($"{"Tag",-6} {"NonPaged",14} {"Paged",14}  Drivers");
            // One driver per line: the first on the tag's line, the others under it.
            var indent = new string(' ', 6 + 1 + 14 + 1 + 14 + 2);
            foreach (var row in owned)
            {
                var first = true;
                foreach (var d in owners[row.Tag])
                {
                    var how = d.Via == "import" ? "imports it, no call site in the code at hand"
                        : $"{d.Sites} site{(d.Sites == 1 ? "" : "s")}{(d.Via == "wrapper" ? " via wrapper" : "")}";
                    o.WriteLine(first ? $"{row.Text,-6} {Bytes(row.NonPagedBytes),14} {Bytes(row.PagedBytes),14}  {d.Image.Path} ({how})" : $"{indent}{d.Image.Path} ({how})");
                    first = false;
                }
            }
            if (unknown.Count > 0)
            {
                o.WriteLine();
                o.WriteLine($"Unknown owners ({unknown.Count} tag{(unknown.Count == 1 ? "" : "s")}: no scanned driver allocates them):");
                var line = new StringBuilder("  ");
                foreach (var row in unknown)
                {
                    var item = $"'{row.Text}'";
                    if (line.Length + item.Length + 1 > 100) { o.WriteLine(line.ToString().TrimEnd()); line.Clear().Append("  "); }
                    line.Append(item).Append(' ');
                }
                o.WriteLine(line.ToString().TrimEnd());
            }
            o.WriteLine();
            o.WriteLine($"{usage.Rows.Count} tag row(s) in the {(usage.Format == "poolmon" ? "PoolMon snapshot" : "!poolused listing")}, {owned.Count} allocated by the {_images} scanned image(s), {unknown.Count} by none of them.");
        }

        private static string Bytes(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
    }
}
