using DriverAudit.Rules.Facts;
using DriverAudit.Scanner.Inputs;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Scanner.Dumps;

/// <summary>
/// Builds the facts of a module image inside a dump: the same <see cref="PeFacts"/> as a file's (over the
/// loaded layout), with the resolved IAT as the import source, so that a driver whose import directory was
/// discarded with INIT still shows rules what it imports. The IAT is resolved on first read.
/// </summary>
internal static class DumpModuleFacts
{
    /// <param name="dumpPath">Path or URI of the dump; its file name prefixes the display name ("MEMORY.DMP!{GUID}.sys").</param>
    public static PeFacts Create(PeImage image, DumpModule module, DumpExportCatalog catalog, bool is64, string dumpPath) =>
        new(image, DumpModuleTarget.ModuleShortName(dumpPath, module.Name), Provenance(module),
            () => IatResolver.Resolve(image, module, catalog, is64));

    /// <summary>A loaded module's provenance: the loader's entry, never a file.</summary>
    public static ModuleFact Provenance(DumpModule module) => Provenance(module.Name, module.FullPath, module.Base);

    /// <summary>The one spelling of a dump module's provenance ("dump", name, full path, base).</summary>
    public static ModuleFact Provenance(string name, string fullPath, ulong? imageBase) => new("dump", name, fullPath, imageBase);
}
