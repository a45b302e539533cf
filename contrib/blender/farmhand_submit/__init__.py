"""Submit the open scene to a farmhand render farm (Render Properties → farmhand).

The panel takes the master's address, an api key, priority, chunk and tags; the frame range
and output come from the scene. "Submit to farmhand" saves the file (or a copy into a shared
folder the workers can read), submits a `blender` template job through farmhand's own client
(vendored into this add-on's zip by `make blender-addon`), and shows the job id with a link to
the dashboard. Errors are Blender reports, never tracebacks. Tested in Blender 3.4 and 4.2
(a legacy add-on: 4.2 installs it from disk, it is not an extension).
"""

# No `from __future__ import annotations`: Blender reads the properties from real annotations.
import os
import sys
import time

import bpy

bl_info = {
    "name": "farmhand",
    "author": "farmhand developers",
    "version": (0, 3, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Render > farmhand",
    "description": "Submit renders to a farmhand farm",
    "category": "Render",
}

VENDOR = os.path.join(os.path.dirname(__file__), "vendor")
# The template's image formats; the others render as PNG.
DEVICES = ("CPU", "CUDA", "OPTIX", "HIP", "ONEAPI", "METAL")
FORMATS = ("PNG", "JPEG", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "TIFF", "BMP", "TARGA", "WEBP")


def farm_client():
    """farmhand.client from the vendored copy (standard library only)."""
    if VENDOR not in sys.path:
        sys.path.insert(0, VENDOR)
    from farmhand import client

    return client


class FarmhandSettings(bpy.types.PropertyGroup):
    master: bpy.props.StringProperty(
        name="Master",
        description="[tls://]HOST:PORT, or a comma-separated list",
        default="127.0.0.1:6000",
    )
    key: bpy.props.StringProperty(
        name="Key", description="api key (not needed on the master's machine)", subtype="PASSWORD"
    )
    ca: bpy.props.StringProperty(
        name="CA", description="CA bundle for a tls:// master", subtype="FILE_PATH"
    )
    priority: bpy.props.IntProperty(name="Priority", default=50, min=0, max=100)
    chunk: bpy.props.IntProperty(name="Chunk", description="frames per task", default=1, min=1)
    tags: bpy.props.StringProperty(
        name="Tags", description="tags a worker must all have, comma-separated"
    )
    shared_path: bpy.props.StringProperty(
        name="Shared folder",
        description="submit a copy saved here (a folder the workers see); empty: save in place",
        subtype="DIR_PATH",
    )
    dashboard: bpy.props.StringProperty(
        name="Dashboard", description="the dashboard's address", default="http://127.0.0.1:8080"
    )
    device: bpy.props.EnumProperty(
        name="Cycles device",
        description="the device workers render Cycles on",
        items=[
            ("SCENE", "As the scene", "CPU when the scene renders on the CPU, else the workers'"),
            *((name, name, f"--cycles-device {name}") for name in DEVICES),
        ],
        default="SCENE",
    )
    last_job: bpy.props.IntProperty(name="Last job", default=0)


def job_fields(scene, blend_path: str) -> dict:
    """The `blender` template's fields for this scene, saved at `blend_path`."""
    settings = scene.farmhand
    step = scene.frame_step
    frames = f"{scene.frame_start}-{scene.frame_end}" + (f"x{step}" if step > 1 else "")
    image_format = scene.render.image_settings.file_format
    fields = {
        "name": f"{bpy.path.display_name_from_filepath(blend_path)}:{scene.name}",
        "template": "blender",
        "file": blend_path,
        "frames": frames,
        "chunk": settings.chunk,
        "priority": settings.priority,
        "output": scene.render.filepath or "//render/####",
        "format": image_format if image_format in FORMATS else "PNG",
        "args": ["-S", scene.name],
    }
    tags = [tag.strip() for tag in settings.tags.split(",") if tag.strip()]
    if tags:
        fields["tags"] = tags
    fields["engine"] = scene.render.engine
    if scene.render.engine == "CYCLES":
        if settings.device != "SCENE":
            fields["device"] = settings.device
        elif scene.cycles.device == "CPU":
            fields["device"] = "CPU"  # else the workers' own Cycles preferences choose
    return fields


def save_for_farm(settings) -> str:
    """Saves the file (or a copy in the shared folder) and returns the path workers use."""
    if settings.shared_path:
        folder = bpy.path.abspath(settings.shared_path)
        os.makedirs(folder, exist_ok=True)
        name = os.path.basename(bpy.data.filepath) or "untitled.blend"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = os.path.join(folder, f"{os.path.splitext(name)[0]}-{stamp}.blend")
        bpy.ops.wm.save_as_mainfile(filepath=path, copy=True, relative_remap=True)
        return path
    if not bpy.data.filepath:
        raise RuntimeError("save the file first (or set a shared folder for a copy)")
    bpy.ops.wm.save_mainfile()
    return bpy.data.filepath


class FARMHAND_OT_submit(bpy.types.Operator):
    """Save the file and render it on the farmhand farm"""

    bl_idname = "farmhand.submit"
    bl_label = "Submit to farmhand"

    def execute(self, context):
        scene = context.scene
        settings = scene.farmhand
        try:
            client = farm_client()
        except ImportError as exc:
            self.report({"ERROR"}, f"farmhand: the add-on's client is missing ({exc})")
            return {"CANCELLED"}
        try:
            path = save_for_farm(settings)
            with client.Client(
                settings.master,
                key=settings.key or None,
                ca=settings.ca or None,
                name="farmhand-blender",
                reconnect_s=5.0,
            ) as farm:
                job_id = farm.call("jobs.submit", **job_fields(scene, path))["job_id"]
        except client.RpcError as exc:
            self.report({"ERROR"}, f"farmhand refused the job: {exc.message}")
            return {"CANCELLED"}
        except (client.MasterUnavailable, OSError, ValueError, RuntimeError) as exc:
            self.report({"ERROR"}, f"farmhand: {exc}")
            return {"CANCELLED"}
        settings.last_job = job_id
        self.report({"INFO"}, f"farmhand: submitted job {job_id}")
        print(f"farmhand: submitted job {job_id}", flush=True)
        return {"FINISHED"}


class FARMHAND_PT_render(bpy.types.Panel):
    bl_label = "farmhand"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.farmhand
        layout.use_property_split = True
        names = ("master", "key", "ca", "priority", "chunk", "tags", "device", "shared_path")
        for name in names:
            layout.prop(settings, name)
        scene = context.scene
        layout.label(
            text=f"Frames {scene.frame_start}-{scene.frame_end}, output {scene.render.filepath}"
        )
        layout.operator(FARMHAND_OT_submit.bl_idname, icon="RENDER_ANIMATION")
        layout.prop(settings, "dashboard")
        if settings.last_job:
            url = f"{settings.dashboard.rstrip('/')}/jobs/{settings.last_job}"
            row = layout.row()
            row.label(text=f"Job {settings.last_job}")
            row.operator("wm.url_open", text="Open in dashboard").url = url


CLASSES = (FarmhandSettings, FARMHAND_OT_submit, FARMHAND_PT_render)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.farmhand = bpy.props.PointerProperty(type=FarmhandSettings)


def unregister():
    del bpy.types.Scene.farmhand
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
