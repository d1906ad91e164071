"""Refusals about tenants, restaurants, points of sale and staff."""

from __future__ import annotations

from maxloyalty.kit.errors import Conflict, Forbidden, Invalid, NotFound


class ContactRequired(Invalid):
    code = "contact_required"
    message = "Give an email or a phone."


class ExpiryInPast(Invalid):
    code = "expiry_in_past"
    message = "expires_at is in the past."


class InvalidStaffRole(Invalid):
    code = "invalid_staff_role"
    message = "Staff roles are RESTAURANT_ADMIN, MANAGER and CASHIER."


class PermissionNotFound(NotFound):
    code = "permission_not_found"
    message = "No such permission."


class RestaurantsRequired(Invalid):
    code = "restaurants_required"


class SelfManagement(Forbidden):
    code = "self_management"
    message = "You cannot change your own staff record."


class StaffExists(Conflict):
    code = "staff_exists"
    message = "This person is already on the staff here."


class StaffNotFound(NotFound):
    code = "staff_not_found"
    message = "No such staff member here."


class UnknownRestaurant(Invalid):
    code = "unknown_restaurant"
    message = "Some restaurant ids are not restaurants of this network."


class InvalidEmail(Invalid):
    code = "invalid_email"


class UserExists(Conflict):
    code = "user_exists"
    message = "A user with this email or phone exists."


class PosNameTaken(Conflict):
    code = "pos_name_taken"


class RestaurantForbidden(Forbidden):
    code = "restaurant_forbidden"
    message = "This restaurant is outside your assignment."


class RestaurantLimitReached(Conflict):
    code = "restaurant_limit_reached"


class RestaurantNameTaken(Conflict):
    code = "restaurant_name_taken"


class RestaurantNotFound(NotFound):
    code = "restaurant_not_found"
    message = "No such restaurant."


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    message = "No such network."


class TenantSlugTaken(Conflict):
    code = "tenant_slug_taken"
