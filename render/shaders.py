"""GLSL 3.30 sources of the renderer's two passes (`synthssl.render.renderer`).

Both passes draw one vertex buffer holding every surface of a scene: unshared vertices (three per
face) in world coordinates, with these float attributes (`VERTEX_LAYOUT`):

* ``position`` (3, metres, world frame: z up, floor at z = 0);
* ``normal`` (3, world frame, shading normal: smooth or per face, `mesh_buffers.shading_normals`);
* ``uv`` (2, texture tiles, `mesh_buffers.triplanar_uv`);
* ``base_color`` (3, linear RGB in [0, 1]), ``metallic``, ``roughness``: the surface's material;
* ``layer``: the material's texture layer in the scene's texture array, -1 for none.

**Id pass** (single-sample): the draw's triangle index ``gl_PrimitiveID`` plus 1 (0 = no
surface) into an unsigned integer attachment, and the z-depth (metres along the camera's optical
axis, ``-z`` of the GL eye frame, interpolated perspective-correctly) into a float attachment.

**Colour pass**: the metallic-roughness model of glTF 2.0 as pyrender 0.1.45 shades it (Schlick
Fresnel, Smith-Schlick occlusion with ``k = (r + 1)^2 / 8``, GGX distribution, dielectric F0 of
0.04, textures decoded from sRGB, ``pow(c, 1 / 2.2)`` out), with directional, point (inverse
square) and spot lights (linear cone falloff, squared), an ambient term and no shadows.
"""

from __future__ import annotations

#: Float attributes per vertex, in buffer order: (name, components).
VERTEX_LAYOUT = (
    ("position", 3),
    ("normal", 3),
    ("uv", 2),
    ("base_color", 3),
    ("metallic", 1),
    ("roughness", 1),
    ("layer", 1),
)
#: Lights a colour pass can shade (``appearance.lights`` is checked against it).
MAX_LIGHTS = 8
#: Light kinds, as the colour shader numbers them.
LIGHT_KINDS = {"directional": 0, "point": 1, "spot": 2}

_VERTEX_INPUTS = "\n".join(
    f"layout(location = {i}) in {'float' if n == 1 else f'vec{n}'} {name};" for i, (name, n) in enumerate(VERTEX_LAYOUT)
)

ID_VERTEX = f"""#version 330 core
{_VERTEX_INPUTS}
uniform mat4 view_proj;
uniform mat4 view;
out float eye_depth;
void main() {{
    gl_Position = view_proj * vec4(position, 1.0);
    eye_depth = -(view * vec4(position, 1.0)).z;
}}
"""

ID_FRAGMENT = """#version 330 core
in float eye_depth;
layout(location = 0) out uint face_plus_one;
layout(location = 1) out float depth;
void main() {
    face_plus_one = uint(gl_PrimitiveID) + 1u;
    depth = eye_depth;
}
"""

COLOR_VERTEX = f"""#version 330 core
{_VERTEX_INPUTS}
uniform mat4 view_proj;
out vec3 frag_position;
out vec3 frag_normal;
out vec2 frag_uv;
flat out vec3 frag_base_color;
flat out vec3 frag_material;
void main() {{
    gl_Position = view_proj * vec4(position, 1.0);
    frag_position = position;
    frag_normal = normalize(normal);
    frag_uv = uv;
    frag_base_color = base_color;
    frag_material = vec3(metallic, roughness, layer);
}}
"""

COLOR_FRAGMENT = f"""#version 330 core
const int MAX_LIGHTS = {MAX_LIGHTS};
const float PI = 3.141592653589793;
const float MIN_ROUGHNESS = 0.04;
in vec3 frag_position;
in vec3 frag_normal;
in vec2 frag_uv;
flat in vec3 frag_base_color;
flat in vec3 frag_material;
uniform sampler2DArray textures;
uniform vec3 cam_pos;
uniform vec3 ambient;
uniform int n_lights;
uniform int light_kind[MAX_LIGHTS];
uniform vec3 light_color[MAX_LIGHTS];      // colour times intensity
uniform vec3 light_position[MAX_LIGHTS];
uniform vec3 light_direction[MAX_LIGHTS];  // where the light shines
uniform vec2 light_cone[MAX_LIGHTS];       // spot: (scale, offset) of the cosine falloff
out vec4 frag_color;

vec3 srgb_to_linear(vec3 c) {{
    return mix(c / 12.92, pow((c + 0.055) / 1.055, vec3(2.4)), step(vec3(0.04045), c));
}}

vec3 brdf(vec3 n, vec3 v, vec3 l, float roughness, float metallic, vec3 f0, vec3 c_diff, vec3 radiance) {{
    vec3 h = normalize(l + v);
    float nl = clamp(dot(n, l), 0.001, 1.0);
    float nv = clamp(abs(dot(n, v)), 0.001, 1.0);
    float nh = clamp(dot(n, h), 0.0, 1.0);
    float vh = clamp(dot(v, h), 0.0, 1.0);
    float x = clamp(1.0 - vh, 0.0, 1.0);
    float x2 = x * x;
    vec3 F = f0 + (1.0 - f0) * (x2 * x2 * x);  // (1 - vh)^5 without pow
    float k = (roughness + 1.0) * (roughness + 1.0) / 8.0;
    float G = nv / (nv * (1.0 - k) + k) * (nl / (nl * (1.0 - k) + k));
    float a2 = roughness * roughness * roughness * roughness;
    float denom = nh * nh * (a2 - 1.0) + 1.0;
    float D = a2 / (PI * denom * denom);
    vec3 diffuse = (1.0 - F) * c_diff / PI;
    vec3 specular = F * G * D / (4.0 * nl * nv + 0.001);
    return nl * radiance * (diffuse + specular);
}}

void main() {{
    float metallic = clamp(frag_material.x, 0.0, 1.0);
    float roughness = clamp(frag_material.y, MIN_ROUGHNESS, 1.0);
    vec3 base = frag_base_color;
    if (frag_material.z >= 0.0) {{
        base *= srgb_to_linear(texture(textures, vec3(frag_uv, frag_material.z)).rgb);
    }}
    vec3 c_diff = base * (1.0 - MIN_ROUGHNESS) * (1.0 - metallic);
    vec3 f0 = mix(vec3(MIN_ROUGHNESS), base, metallic);
    vec3 n = normalize(frag_normal);
    vec3 v = normalize(cam_pos - frag_position);
    vec3 color = vec3(0.0);
    for (int i = 0; i < n_lights; i++) {{
        vec3 radiance = light_color[i];
        vec3 l = -light_direction[i];
        if (light_kind[i] != 0) {{
            vec3 to_light = light_position[i] - frag_position;
            float dist2 = dot(to_light, to_light);
            l = to_light * inversesqrt(dist2);
            float falloff = 1.0;
            if (light_kind[i] == 2) {{
                float cos_angle = clamp(dot(light_direction[i], -l), 0.0, 1.0);
                falloff = clamp(cos_angle * light_cone[i].x + light_cone[i].y, 0.0, 1.0);
                falloff *= falloff;
            }}
            radiance *= falloff / dist2;
        }}
        color += brdf(n, v, normalize(l), roughness, metallic, f0, c_diff, radiance);
    }}
    color += base * ambient;
    frag_color = vec4(clamp(pow(color, vec3(1.0 / 2.2)), 0.0, 1.0), 1.0);
}}
"""

__all__ = [
    "VERTEX_LAYOUT",
    "MAX_LIGHTS",
    "LIGHT_KINDS",
    "ID_VERTEX",
    "ID_FRAGMENT",
    "COLOR_VERTEX",
    "COLOR_FRAGMENT",
]
