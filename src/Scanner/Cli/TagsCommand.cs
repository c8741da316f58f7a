using System.CommandLine;
using System.Text.Json;
using DriverAudit.Scanner.Code;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Engine;
using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Cli;

/// <summary>
/// <c>driveraudit tags PATH... [--tag PATTERN] [--format text|json|pooltag]</c>: the pool tags each driver passes
/// to the kernel allocators, recovered from its call sites. With <c>--tag</c>, only drivers (and their uses) that
/// match: "which driver allocates with this tag?".
/// </summary>
public static class TagsCommand
{
    public static Command Create(CliIo io)
    {
        var paths = CliInputs.PathsArgument("Driver files, kernel dumps or folders.");
        var tag = new Option<string[]>("--tag")
        {
            Description = "Only drivers using a tag that matches (repeatable). Memory order as PoolMon prints it ('Thre', 'Ddk '); " +
                          "wildcards * and ?; \\xNN for a byte.",
        };
        var format = new Option<string>("--format", "-f")
        {
            Description = "text, json (JSON Lines, one object per image) or pooltag (pooltag.txt lines).",
            DefaultValueFactory = _ => "text",
        };
        format.AcceptOnlyFromAmong("text", "json", "pooltag");
        var include = new Option<string[]>("--include") { Description = "Glob of files to read inside folders. Default: **/*.sys and **/*.dmp." };
        var command = new Command("tags", "List the pool tags drivers pass to ExAllocatePool*/ExFreePoolWithTag, or find the drivers using a tag.")
        {
            paths, tag, format, include,
        };
        command.SetAction(parse =>
        {
            var patterns = new List<TagPattern>();
            foreach (var text in parse.GetValue(tag) ?? [])
            {
                if (!PoolTag.TryParsePattern(text, out var p, out var error))
                {
                    io.Error.WriteLine($"driveraudit: {error}");
                    return 2;
                }
                patterns.Add(p);
            }
            var fmt = parse.GetValue(format) ?? "text";
            var failed = 0;
            using var writer = new Utf8JsonWriter(io.StdoutStream);
            foreach (var item in CliInputs.Crawl(io, parse.GetValue(paths), new CrawlOptions(parse.GetValue(include) ?? [], []), new SourceRoot(io.WorkingDirectory)))
            {
                var error = item is InputProblem problem ? problem.Message : Analyse(item, patterns, fmt, writer, io);
                if (error is null) continue;
                failed++;
                io.Error.WriteLine($"driveraudit: {error}");
            }
            io.Out.Flush();
            return failed > 0 ? 3 : 0;
        });
        return command;
    }

    private static string? Analyse(InputItem item, List<TagPattern> patterns, string format, Utf8JsonWriter writer, CliIo io)
    {
        if (DumpInputAnalyzer.Sniff(item.FullPath) == InputKind.KernelDump) return AnalyseDump(item, patterns, format, writer, io);

        FileImageSource source;
        try { source = FileImageSource.Open(item.FullPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return $"cannot read '{item.DisplayPath}': {e.Message}"; }
        using (source)
        {
            var open = PeImage.TryOpen(source);
            if (open.Image is not PeImage image) return $"'{item.DisplayPath}' is not analysable: {open.Reason}";
            Report(item.DisplayPath, Path.GetFileName(item.FullPath), TagIndex.Build(image, CodeImport.FromImage(image)), patterns, format, writer, io);
            return null;
        }
    }

    /// <summary>Every loaded module of a kernel dump, with its imports resolved through the IAT (the import table is often gone).</summary>
    private static string? AnalyseDump(InputItem item, List<TagPattern> patterns, string format, Utf8JsonWriter writer, CliIo io)
    {
        var open = KernelDump.TryOpen(item.FullPath);
        if (open.Dump is not KernelDump dump) return $"'{item.DisplayPath}' is not analysable: {open.Message}";
        using (dump)
        {
            if (!dump.HasMemory) return $"'{item.DisplayPath}' is a triage dump: it holds no module images to search for tags.";
            var catalog = new DumpExportCatalog(dump);
            var is64 = dump.Machine == DumpMachine.X64;
            foreach (var module in dump.Modules)
            {
                if (PeImage.TryOpen(dump.OpenModuleImage(module)).Image is not PeImage image)
                {
                    io.Error.WriteLine($"driveraudit: '{item.DisplayPath}!{module.Name}' skipped: its headers are not in the dump.");
                    continue;
                }
                var facts = new DumpModuleFacts(image, module, catalog, is64, item.DisplayPath);
                Report($"{item.DisplayPath}!{module.Name}", module.Name, TagIndex.Build(image, PeFacts.CodeImports(facts.Imports)), patterns, format, writer, io);
            }
            return null;
        }
    }

    private static void Report(string path, string module, ImageTags tags, List<TagPattern> patterns, string format, Utf8JsonWriter writer, CliIo io)
    {
        var uses = patterns.Count == 0 ? tags.Tags : tags.Tags.Where(t => patterns.Any(p => p.Matches(t.Value))).ToList();
        if (patterns.Count > 0 && uses.Count == 0) return;
        switch (format)
        {
            case "json": WriteJson(writer, io, path, module, uses, tags.UnknownTagSites); break;
            case "pooltag": WritePoolTag(io.Out, module, uses); break;
            default: WriteText(io.Out, path, uses, tags); break;
        }
    }

    private static void WriteJson(Utf8JsonWriter w, CliIo io, string path, string module, IReadOnlyList<TagUse> uses, int unknown)
    {
        w.WriteStartObject();
        w.WriteString("path", path);
        w.WriteString("module", module);
        w.WriteStartArray("tags");
        foreach (var u in uses)
        {
            w.WriteStartObject();
            w.WriteString("tag", u.Tag);
            w.WriteString("value", $"0x{u.Value:x8}");
            w.WriteString("api", u.Api);
            w.WriteString("site", $"0x{u.SiteRva:x}");
            if (u.PoolType is { } type) w.WriteString("poolType", $"0x{type:x}");
            if (u.PoolFlags is { } flags) w.WriteString("poolFlags", $"0x{flags:x}");
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("unknownTagSites", unknown);
        w.WriteEndObject();
        CliInputs.EndJsonLine(w, io);
    }

    // pooltag.txt: "Tag - binary - description", one line per distinct (tag, API) of the driver.
    private static void WritePoolTag(TextWriter o, string module, IReadOnlyList<TagUse> uses)
    {
        foreach (var (tagText, api) in uses.Select(u => (u.Tag, u.Api)).Distinct().OrderBy(x => x.Tag, StringComparer.Ordinal).ThenBy(x => x.Api, StringComparer.Ordinal))
            o.WriteLine($"{tagText} - {module} - {api}");
    }

    private static void WriteText(TextWriter o, string path, IReadOnlyList<TagUse> uses, ImageTags all)
    {
        o.WriteLine(path);
        foreach (var u in uses)
        {
            var extra = u.PoolType is { } t ? $" pool-type 0x{t:x}" : u.PoolFlags is { } f ? $" pool-flags 0x{f:x}" : "";
            o.WriteLine($"  '{u.Tag}' 0x{u.Value:x8} {u.Api} at 0x{u.SiteRva:x}{extra}");
        }
        foreach (var site in all.Sites)
        {
            if (PoolApis.Find(site.Api) is not { } signature || site.Arg(signature.TagArg).IsKnown) continue;
            o.WriteLine($"  tag unknown   {site.Api.Name} at 0x{site.SiteRva:x} (args {string.Join(", ", site.Args)}; {site.Shape})");
        }
        o.WriteLine();
    }
}
