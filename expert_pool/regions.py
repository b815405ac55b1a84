"""Administrative region codes (GB/T 2260) for experts and draw quotas. Pure.

Experts carry a province code (e.g. 440000 广东省) and a city code (e.g. 442000 中山市). A quota may name
either: a city code takes that city's experts, a province code takes every city in the province, which is how
cross-site draws (跨区域抽取) ask for "2 from Guangzhou and 3 from anywhere in Guangdong".
"""
from __future__ import annotations

import re

from core.errors import Unprocessable

_CODE_RE = re.compile(r"^[1-9]\d{5}$")

GUANGDONG = "440000"
# Prefecture-level cities of Guangdong (广东省地级以上市), GB/T 2260.
GUANGDONG_CITIES: dict[str, tuple[str, str]] = {
    "440100": ("广州市", "Guangzhou"),
    "440200": ("韶关市", "Shaoguan"),
    "440300": ("深圳市", "Shenzhen"),
    "440400": ("珠海市", "Zhuhai"),
    "440500": ("汕头市", "Shantou"),
    "440600": ("佛山市", "Foshan"),
    "440700": ("江门市", "Jiangmen"),
    "440800": ("湛江市", "Zhanjiang"),
    "440900": ("茂名市", "Maoming"),
    "441200": ("肇庆市", "Zhaoqing"),
    "441300": ("惠州市", "Huizhou"),
    "441400": ("梅州市", "Meizhou"),
    "441500": ("汕尾市", "Shanwei"),
    "441600": ("河源市", "Heyuan"),
    "441700": ("阳江市", "Yangjiang"),
    "441800": ("清远市", "Qingyuan"),
    "441900": ("东莞市", "Dongguan"),
    "442000": ("中山市", "Zhongshan"),
    "445100": ("潮州市", "Chaozhou"),
    "445200": ("揭阳市", "Jieyang"),
    "445300": ("云浮市", "Yunfu"),
}
PROVINCES: dict[str, tuple[str, str]] = {GUANGDONG: ("广东省", "Guangdong")}


def is_province(code: str) -> bool:
    """Whether a well-formed code names a province (xx0000)."""
    return code.endswith("0000")


def region_name(code: str, lang: str = "zh") -> str:
    """The region's name where we ship one, else the code itself."""
    names = GUANGDONG_CITIES.get(code) or PROVINCES.get(code)
    if names is None:
        return code
    return names[0] if lang == "zh" else names[1]


def check_region_code(code: str, field: str = "region") -> str:
    """Refuse with `invalid_region` unless `code` is six digits naming a province or a city."""
    if not isinstance(code, str) or not _CODE_RE.match(code) or code[2:] != "0000" and code[4:] != "00":
        raise Unprocessable(f"{field} must be a six-digit province or city code such as 440000 or 442000",
                            code="invalid_region", details={"field": field, "value": code})
    return code


def check_expert_region(province_code: str, city_code: str) -> tuple[str, str]:
    """An expert's province and city: a province code and a city inside it."""
    check_region_code(province_code, "province_code")
    check_region_code(city_code, "city_code")
    if not is_province(province_code):
        raise Unprocessable("province_code must end in 0000", code="invalid_region",
                            details={"field": "province_code", "value": province_code})
    if is_province(city_code) or city_code[:2] != province_code[:2]:
        raise Unprocessable(f"city {city_code} is not a city of province {province_code}", code="invalid_region",
                            details={"field": "city_code", "value": city_code})
    return province_code, city_code


def region_matches(quota_region: str | None, expert_city: str | None) -> bool:
    """Whether an expert of `expert_city` fills a quota on `quota_region` (None: any region)."""
    if quota_region is None:
        return True
    if expert_city is None:
        return False
    if is_province(quota_region):
        return expert_city[:2] == quota_region[:2]
    return expert_city == quota_region
